"""What every checkpoint reader needs, whatever the format: reading a weights file on the CPU,
flattening nested state dicts, applying a rename table, and loading with an error a person can act on.

The formats themselves live in ``megatron_checkpoint.py`` (Megatron-LM, for ``MegatronBERT``) and
``hf_checkpoint.py`` (Hugging Face BERT, for ``BERT``). See ``docs/checkpoints.md``.
"""
from __future__ import annotations

import json
import pickle
import re
import zipfile
from pathlib import Path

import torch
from torch import nn

from nmod.backends.pytorch.serialization import UnsafeCheckpointError
from nmod.core.errors import CheckpointError, MissingFileError
from nmod.log import get_logger

from .safe_unpickle import torch_load

# What a Hugging Face folder holds its weights in, in the order they are looked for.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")

# (pattern, replacement) applied in order; a replacement of None drops the key.
Renames = list[tuple[str, "str | None"]]

# The pretrained pooler, under the name every format's rename table gives it (Megatron-LM's
# ``language_model.pooler.dense``, megatron-core's and Hugging Face's ``pooler.dense``).
POOLER_KEYS = ("pooler.dense.weight", "pooler.dense.bias")

log = get_logger(__name__)


def check_vocab_fits(tokens: int, rows: int, multiple: int, vocab: str, source: str) -> None:
    """A vocabulary of ``tokens`` fits word embeddings of ``rows`` rows, which a checkpoint pads to a
    multiple of ``multiple`` (Megatron: 128 x the tensor-parallel size it was trained with):
    ``rows - multiple < tokens <= rows``.

    A larger vocabulary would index past the embeddings; a smaller one is almost surely another model's
    (a 500-token or a cased vocabulary beside a 30,522-row uncased checkpoint), and would train silently.
    """
    if tokens > rows:
        raise CheckpointError(f"{source}: word_embeddings has {rows} rows but the vocabulary has {tokens} tokens; "
                              f"is {vocab} the vocabulary this checkpoint was trained with?")
    if rows - tokens >= multiple:
        raise CheckpointError(
            f"{vocab} has {tokens} tokens but {source}'s word embeddings have {rows} rows; padding to a multiple of "
            f"{multiple} explains at most {multiple - 1} extra rows, so it was trained with {rows - multiple + 1}.."
            f"{rows} tokens: is {vocab} the vocabulary this checkpoint was trained with?")


def log_loaded(source: str, fmt: str, model: str, loaded: int, ignored: list[str]) -> None:
    """One line saying what a checkpoint gave the encoder: its format, the tensors read, those left out."""
    left = f"; ignored {len(ignored)} tensors outside the encoder (e.g. {', '.join(ignored[:3])})" if ignored else ""
    log.info(f"loaded {source} ({fmt}): {loaded} tensors into {model}{left}")


def has_pooler(state: dict) -> bool:
    return all(key in state for key in POOLER_KEYS)


def fit_pooler(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
    """The checkpoint's pooler for a model built with one; dropped (and said) for a model without.

    A model with a pooler whose checkpoint has none keeps its fresh initialisation, with a warning,
    as ``transformers`` does for a ``BertModel`` loaded from a checkpoint without a pooler.
    """
    expected = model.state_dict()
    if POOLER_KEYS[0] not in expected:
        dropped = [key for key in POOLER_KEYS if key in state]
        if dropped:
            log.info("%s: the encoder was built without a pooler (add_pooler=False); ignoring %s", source, dropped)
        return {key: value for key, value in state.items() if key not in POOLER_KEYS}
    if not has_pooler(state):
        log.warning("%s has no pretrained pooler (pooler.dense); the encoder's pooler starts from a fresh "
                    "initialisation", source)
        return {**state, **{key: expected[key] for key in POOLER_KEYS}}
    return state


def load_file(path: str | Path, allow_unsafe: bool = False) -> dict:
    """A ``.safetensors`` file, a sharded HF index, or anything ``torch.load`` reads, on the CPU.

    Besides tensors, a ``torch.load``ed file may hold what training scripts save beside the weights
    (``_training_state_globals``); anything else needs ``allow_unsafe``, for a file its user trusts.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"checkpoint file {path} does not exist")
    if path.name.endswith(".index.json"):
        weight_map = json.loads(path.read_text())["weight_map"]
        state = {}
        for shard in sorted(set(weight_map.values())):
            state.update(load_file(path.parent / shard, allow_unsafe))
        return state
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file as load_safetensors

        try:
            return load_safetensors(str(path))
        except (SafetensorError, OSError) as err:
            raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None
    if path.suffix in (".index", ".meta") or ".ckpt.data-" in path.name:  # a .ckpt itself may be PyTorch's (NeMo)
        raise CheckpointError(
            f"{path} looks like a TensorFlow checkpoint; convert it to PyTorch first "
            "(transformers' convert_bert_original_tf_checkpoint_to_pytorch)"
        )
    # mmap: a training checkpoint's optimizer state (twice the weights) is never read into memory.
    mmap = zipfile.is_zipfile(path)  # pre-1.6 torch files cannot be mapped
    if not mmap and not _is_pickle(path):
        with path.open("rb") as f:
            start = f.read(16)
        raise CheckpointError(f"{path} is not a PyTorch checkpoint: torch.save writes a zip archive (a pickle before "
                              f"torch 1.6), and this file is neither (it begins {start!r})")
    try:
        return torch_load(path, allow_unsafe, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({err})") from None
        raise UnsafeCheckpointError(
            f"{path} holds Python objects beyond tensors, argparse.Namespace, numpy arrays and the classes of "
            f"Megatron-LM and NeMo (read as inert stand-ins), which nmod refuses to unpickle "
            f"({str(err).splitlines()[-1][:300]}). Only if you trust its source, pass allow_unsafe_checkpoint=True "
            "(--allow_unsafe_checkpoint on the command line)."
        ) from None
    except (RuntimeError, KeyError, EOFError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None


def _is_pickle(path: Path) -> bool:
    """Pickles of protocol 2 and later, which every torch.save before 1.6 wrote, begin with 0x80."""
    with path.open("rb") as f:
        return f.read(1) == b"\x80"


def find_weights_file(directory: Path) -> Path:
    """The weights of a Hugging Face folder (BERT or megatron-bert)."""
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise MissingFileError(f"{directory}: no weights; expected one of {', '.join(WEIGHT_FILES)}")


def flatten(tree: dict, prefix: str = "") -> dict[str, torch.Tensor]:
    """Megatron nests state dicts (``embedding -> word_embeddings -> weight``); join keys with dots."""
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, name + "."))
        elif isinstance(value, torch.Tensor):
            flat[name] = value
    return flat


def split_weights(obj: dict, source: Path) -> tuple[dict, dict]:
    """Splits a checkpoint object into (weights, metadata): Megatron's ``model`` or a ``state_dict``."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: expected a dict of tensors or a Megatron checkpoint dict, found {type(obj).__name__}")
    if any(re.fullmatch(r"model\d+", key) for key in obj):
        raise CheckpointError(f"{source}: virtual-pipeline checkpoints (model0, model1, ...) are not supported")
    for container in ("model", "state_dict", "module"):
        if isinstance(obj.get(container), dict):
            meta = {key: value for key, value in obj.items() if key != container}
            return obj[container], meta
    return obj, {}


def rename(state: dict[str, torch.Tensor], renames: Renames) -> tuple[dict, list[str]]:
    """Applies a rename table; returns the renamed dict and the keys it dropped."""
    out, dropped = {}, []
    for key, value in state.items():
        new = key
        for pattern, replacement in renames:
            if replacement is None:
                if re.search(pattern, new):
                    dropped.append(key)
                    new = None
                    break
            else:
                new = re.sub(pattern, replacement, new)
        if new is not None:
            out[new] = value
    return out, dropped


def load_exact(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict(strict=True)`` with an error a person can act on: every missing, unexpected
    and wrongly-shaped key, and what the model expected."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or shapes:
        lines = [f"{source} does not fit {type(model).__name__}:"]
        if missing:
            lines.append(f"  missing keys ({len(missing)}): {missing}")
        if unexpected:
            lines.append(f"  unexpected keys ({len(unexpected)}): {unexpected}")
        if shapes:
            lines.append(f"  shape mismatches ({len(shapes)}): {shapes}")
            lines.append("  is the config (hidden size, layers, heads, vocab) the one this checkpoint was trained with?")
        raise CheckpointError("\n".join(lines))
    with torch.no_grad():
        for name, tensor in expected.items():
            tensor.copy_(state[name])
