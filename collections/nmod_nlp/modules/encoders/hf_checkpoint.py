"""Reading Hugging Face BERT checkpoints into ``BertModel``: ``config.json`` + ``model.safetensors``
or ``pytorch_model.bin`` (sharded ones too). See ``docs/checkpoints.md``.

``BertModel`` keeps Hugging Face's parameter names, so the rename table only strips the ``bert.``
prefix of ``BertFor*`` checkpoints, renames TF-era ``gamma``/``beta``, and drops the task and
pretraining heads; the pooler is kept for an encoder built with one (``fit_pooler``).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from nmod.core.errors import CheckpointError, MissingFileError

from .checkpoint_io import (
    Renames,
    find_weights_file,
    fit_pooler,
    flatten,
    load_exact,
    load_file,
    log_loaded,
    rename,
    split_weights,
)

HF_BERT_RENAMES: Renames = [
    (r"^(?:module\.|model\.)+", ""),
    (r"(^|\.)position_ids$", None),
    (r"^(?:bert\.)?(?:cls|qa_outputs|classifier)\.", None),
    (r"^bert\.", ""),
    (r"\.gamma$", ".weight"),  # TF-era names
    (r"\.beta$", ".bias"),
]


def read_hf_checkpoint(
    path: str | Path, config_file: str | Path | None = None, allow_unsafe: bool = False
) -> tuple[dict, dict, Path]:
    """``(config, state_dict, weights_file)`` from a HF folder, or from a weights file plus its config.

    The config is ``config_file`` if given, else the ``config.json`` next to the weights.
    ``allow_unsafe`` unpickles Python objects beyond tensors: only for a file whose source you trust.
    """
    path = Path(path)
    if path.is_dir():
        weights_file = find_weights_file(path)
    elif path.is_file():
        weights_file = path
    else:
        raise MissingFileError(f"checkpoint {path} does not exist")
    config_path = Path(config_file) if config_file else weights_file.parent / "config.json"
    if not config_path.is_file():
        raise MissingFileError(
            f"{config_path} does not exist; a Hugging Face checkpoint needs its config.json "
            "(pass it with --bert_config)"
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{config_path}: not valid JSON ({err})") from err
    state, _ = split_weights(load_file(weights_file, allow_unsafe), weights_file)
    return config, flatten(state), weights_file


def renamed_bert_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """HF BERT weights (``bert.``-prefixed or not, ``gamma``/``beta`` or not) under ``BertModel``'s
    names, and the keys left out (task and pretraining heads)."""
    return rename(state, HF_BERT_RENAMES)


def load_bert_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str,
                         dropped: tuple[str, ...] = ()) -> None:
    """Loads HF BERT weights into a ``BertModel``, its pooler too when it has one, and says so."""
    renamed, gone = renamed_bert_state(state)
    state = fit_pooler(model, renamed, source)
    load_exact(model, state, source)
    log_loaded(source, "Hugging Face BERT", type(model).__name__, len(state), [*dropped, *gone])
