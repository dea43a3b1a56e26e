"""The sizes of a Megatron-LM BERT and where they come from: one field table, one resolution order.

``CONFIG_FIELDS`` lists each field once with every spelling it has in the wild: Megatron-LM's
``config.json`` (``hidden-size``), its argparse ``args`` and NeMo's ``model_config.yaml``
(``hidden_size``), Hugging Face's ``config.json`` (``num_hidden_layers``). ``MegatronBertConfig.resolve``
takes each field from the first source that sets it.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from nmod.core.errors import ConfigError, MissingFileError

__all__ = ["ACTIVATION_NAMES", "CONFIG_FIELDS", "SHAPE_FIELDS", "MegatronBertConfig", "padded_vocab_size",
           "count_vocab"]

ACTIVATION_NAMES = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu")  # gelu_new: Megatron's --openai-gelu

# Field -> its spellings: Megatron's config.json (hyphens, read as underscores), argparse and NeMo
# names, Hugging Face's config.json names.
CONFIG_FIELDS = {
    "hidden_size": ("hidden_size",),
    "num_layers": ("num_layers", "num_hidden_layers"),
    "num_attention_heads": ("num_attention_heads",),
    "max_position_embeddings": ("max_position_embeddings", "max_seq_length"),
    "ffn_hidden_size": ("ffn_hidden_size", "intermediate_size"),
    "vocab_size": ("vocab_size",),
    "padded_vocab_size": ("padded_vocab_size",),
    "num_tokentypes": ("num_tokentypes", "type_vocab_size"),
    "make_vocab_size_divisible_by": ("make_vocab_size_divisible_by",),
    "layernorm_epsilon": ("layernorm_epsilon", "layer_norm_eps"),
    "hidden_dropout": ("hidden_dropout", "hidden_dropout_prob"),
    "attention_dropout": ("attention_dropout", "attention_probs_dropout_prob"),
    "activation": ("activation", "hidden_act"),
}

# What a config file may not contradict in the checkpoint's own record: the weights would not fit.
SHAPE_FIELDS = ("hidden_size", "num_layers", "num_attention_heads", "ffn_hidden_size")


def padded_vocab_size(vocab_size: int, divisible_by: int = 128, tensor_parallel_size: int = 1) -> int:
    """Megatron pads the embedding rows to a multiple of ``divisible_by * tensor_parallel_size``."""
    multiple = divisible_by * tensor_parallel_size
    return int(math.ceil(vocab_size / multiple) * multiple)


def count_vocab(vocab_file: str | Path) -> int:
    """Lines of a WordPiece ``vocab.txt``: the real vocabulary size."""
    path = Path(vocab_file)
    if not path.is_file():
        raise MissingFileError(f"vocab file {path} does not exist")
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if line.rstrip("\n"))


@dataclass
class MegatronBertConfig:
    """The sizes of a Megatron-LM BERT; the defaults are Megatron's BERT-345M.

    ``resolve`` builds one from the places a size can come from, in Megatron's and NeMo's order.
    """

    vocab_size: int  # the real vocabulary; rows past it are padding and never exposed
    hidden_size: int = 1024
    num_layers: int = 24
    num_attention_heads: int = 16
    max_position_embeddings: int = 512
    ffn_hidden_size: int | None = None  # 4 * hidden_size when None
    num_tokentypes: int = 2
    make_vocab_size_divisible_by: int = 128
    padded_vocab_size: int | None = None  # computed from the two above when None
    layernorm_epsilon: float = 1e-5
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    activation: str = "gelu"

    def __post_init__(self):
        self.ffn_hidden_size = self.ffn_hidden_size or 4 * self.hidden_size
        if self.padded_vocab_size is None:
            self.padded_vocab_size = padded_vocab_size(self.vocab_size, self.make_vocab_size_divisible_by)
        if self.padded_vocab_size < self.vocab_size:
            raise ConfigError(f"padded_vocab_size {self.padded_vocab_size} < vocab_size {self.vocab_size}")
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )
        if self.activation not in ACTIVATION_NAMES:
            raise ConfigError(f"activation {self.activation!r} is not one of {sorted(ACTIVATION_NAMES)}")

    @staticmethod
    def recognised(values: dict) -> dict:
        """The fields found in Megatron (``hidden-size``), argparse (``hidden_size``) or HF
        (``num_hidden_layers``) spellings, under this class's names; other keys are ignored."""
        given = {key.replace("-", "_"): value for key, value in values.items()}
        if given.get("openai_gelu"):
            given.setdefault("activation", "gelu_new")
        found = {}
        for name, spellings in CONFIG_FIELDS.items():
            present = [s for s in spellings if given.get(s) is not None]
            if present:
                found[name] = given[present[0]]
        return found

    @classmethod
    def from_dict(
        cls,
        values: dict,
        vocab_size: int | None = None,
        fallback_vocab_size: int | None = None,
        source: str = "config",
    ) -> "MegatronBertConfig":
        """``vocab_size`` overrides the config's; ``fallback_vocab_size`` (a checkpoint's rows) fills in."""
        kwargs = cls.recognised(values)
        if vocab_size is not None:
            kwargs["vocab_size"] = vocab_size
        elif "vocab_size" not in kwargs and fallback_vocab_size is not None:
            kwargs["vocab_size"] = fallback_vocab_size
        cls.require(kwargs, ("vocab_size", "hidden_size", "num_layers", "num_attention_heads"), source)
        return cls(**kwargs)

    @staticmethod
    def require(recognised: dict, names: tuple[str, ...], source: str) -> None:
        missing = [name for name in names if name not in recognised]
        if missing:
            spellings = {name: [s.replace("_", "-") for s in CONFIG_FIELDS[name]] for name in missing}
            raise ConfigError(
                f"{source}: missing {missing}; expected keys such as {spellings} "
                "(the vocab size may instead come from a vocab file or the checkpoint)"
            )

    @staticmethod
    def read_json(path: str | Path) -> dict:
        path = Path(path)
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: cannot read a Megatron config.json ({err})") from err

    @classmethod
    def from_json(cls, path: str | Path, vocab_size: int | None = None) -> "MegatronBertConfig":
        return cls.from_dict(cls.read_json(path), vocab_size=vocab_size, source=str(path))

    @classmethod
    def resolve(
        cls,
        overrides: Mapping[str, Any] | None = None,
        config_file: str | Path | None = None,
        checkpoint_args: Mapping[str, Any] | None = None,
        checkpoint_source: str = "the checkpoint",
    ) -> "MegatronBertConfig":
        """Each field from the first source that sets it: ``overrides`` (``None`` values: not given),
        the Megatron ``config.json`` at ``config_file``, the ``args`` a checkpoint records, and last
        this class's defaults (Megatron-LM's BERT-345M).

        That order lets a fine-tuning run change dropout (an override) on a model whose sizes the
        config file names, and lets a Megatron save folder, whose ``args`` record its sizes, load with
        no config file at all. ``overrides`` use this class's field names (or NeMo's
        ``max_seq_length``); a config file must name the hidden size, the layers and the heads, and
        may not contradict the sizes the checkpoint records (``SHAPE_FIELDS``).
        """
        recorded = cls.recognised(checkpoint_args or {})
        layers = [recorded]
        if config_file is not None:
            from_file = cls.recognised(cls.read_json(config_file))
            cls.require(from_file, ("hidden_size", "num_layers", "num_attention_heads"), str(config_file))
            differ = {k: (from_file[k], recorded[k]) for k in SHAPE_FIELDS
                      if k in from_file and k in recorded and from_file[k] != recorded[k]}
            if differ:
                raise ConfigError(f"{config_file} and {checkpoint_source} disagree on the model's shape: " + ", ".join(
                    f"{k} {a} there, {b} in the checkpoint" for k, (a, b) in differ.items())
                    + "; is the config the checkpoint's? (leave --bert_config out: the checkpoint records its own)")
            layers.append(from_file)
        layers.append(cls._overrides(overrides or {}))
        values = {}
        for layer in layers:  # later layers win
            values.update(layer)
        if values.get("vocab_size") is None:
            raise ConfigError(
                "no vocab size: pass vocab_size or vocab_file, a config_file that names it, or a checkpoint"
            )
        return cls(**values)

    @classmethod
    def _overrides(cls, overrides: Mapping[str, Any]) -> dict:
        """``overrides`` under this class's names, refusing a name that would otherwise be ignored."""
        known = {spelling for spellings in CONFIG_FIELDS.values() for spelling in spellings}
        unknown = sorted(key for key in overrides if key not in known)
        if unknown:
            raise TypeError(f"MegatronBertConfig: unknown fields {unknown}; expected {[f.name for f in fields(cls)]}")
        return cls.recognised({key: value for key, value in overrides.items() if value is not None})

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}
