"""Reading Megatron-LM BERT checkpoints into ``MegatronBertModel``, tensor-parallel shards merged.
See ``docs/checkpoints.md``.

  * a bare state dict (``.pt``/``.bin``/``.safetensors``) in Megatron naming, or nmod's own saved weights;
  * ``model_optim_rng.pt``: ``{"model": {"language_model": {"embedding": ..., "transformer"|"encoder": ...}},
    "checkpoint_version": v, "args": Namespace}``; the fused QKV rows are ordered by ``v`` (``qkv_axes``);
  * a tensor-parallel folder ``<dir>/latest_checkpointed_iteration.txt`` + ``release/mp_rank_XX/``
    (or ``iter_NNNNNNN/``), merged here: column-parallel weights (QKV, ``dense_h_to_4h``, vocab-parallel
    word embeddings) concatenate on dim 0, row-parallel ones (attention ``dense``, ``dense_4h_to_h``) on dim 1;
  * a Hugging Face ``megatron-bert`` folder (``config.json`` + weights).

Everything is renamed onto the model's own parameter names with ``MEGATRON_RENAMES``; the pooler
(``language_model.pooler.dense``) is kept for an encoder built with one (``fit_pooler``); keys that
belong to pretraining or task heads (LM head, NSP head, classifiers) are dropped and logged;
anything else that does not fit is an error that lists missing and unexpected keys.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nmod.core.errors import CheckpointError, MissingFileError
from nmod.log import get_logger

from .checkpoint_io import (
    WEIGHT_FILES,
    Renames,
    find_weights_file,
    fit_pooler,
    log_loaded,
    flatten,
    has_pooler,
    load_exact,
    load_file,
    rename,
    split_weights,
)

log = get_logger(__name__)

# What Megatron-LM writes today: fused QKV rows [heads, 3, head_dim] and the encoder/self_attention
# names. Earlier versions used transformer/attention; a bare state dict, which stores no version, is this.
CHECKPOINT_VERSION = 3.0

MEGATRON_FILES = ("model_optim_rng.pt", "model_rng.pt")

# The wrappers around the language model's own names: DDP's module., Megatron's model. and language_model.
MEGATRON_PREFIXES = r"^(?:module\.|model\.|language_model\.|bert\.)+"

# Applied in order after the prefixes are stripped; replacement None = drop.
MEGATRON_RENAMES: Renames = [
    (MEGATRON_PREFIXES, ""),
    (r"(^|\.)position_ids$|\._extra_state$", None),
    (r"^(?:lm_head|binary_head|output_layer|cls|qa_outputs|classifier)\.", None),
    # Megatron-LM before 2022: transformer/attention; Megatron-core (legacy torch format): decoder/linear_*.
    (r"^(?:transformer|decoder)\.", "encoder."),
    (r"\.attention\.(query_key_value|dense)\.", r".self_attention.\1."),
    (r"\.self_attention\.linear_qkv\.layer_norm_(weight|bias)$", r".input_layernorm.\1"),
    (r"\.mlp\.linear_fc1\.layer_norm_(weight|bias)$", r".post_attention_layernorm.\1"),
    (r"\.pre_mlp_layernorm\.", ".post_attention_layernorm."),
    (r"\.linear_qkv\.", ".query_key_value."),
    (r"\.linear_proj\.", ".dense."),
    (r"\.linear_fc1\.", ".dense_h_to_4h."),
    (r"\.linear_fc2\.", ".dense_4h_to_h."),
    # Hugging Face megatron-bert (transformers.MegatronBertModel) naming.
    (r"^embeddings\.token_type_embeddings\.", "embedding.tokentype_embeddings."),
    (r"^embeddings\.", "embedding."),
    (r"^encoder\.layer\.(\d+)\.attention\.ln\.", r"encoder.layers.\1.input_layernorm."),
    (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"encoder.layers.\1.self_attention.\2."),
    (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"encoder.layers.\1.self_attention.dense."),
    (r"^encoder\.layer\.(\d+)\.ln\.", r"encoder.layers.\1.post_attention_layernorm."),
    (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"encoder.layers.\1.mlp.dense_h_to_4h."),
    (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"encoder.layers.\1.mlp.dense_4h_to_h."),
    (r"^encoder\.ln\.", "encoder.final_layernorm."),
]

# Tensor-parallel layout: which dim each sharded weight is split on; all else is replicated.
COLUMN_PARALLEL = re.compile(r"(query_key_value|dense_h_to_4h)\.(weight|bias)$|word_embeddings\.weight$")
ROW_PARALLEL = re.compile(r"(self_attention\.dense|dense_4h_to_h)\.weight$")
QKV = re.compile(r"query_key_value\.(weight|bias)$")


def tensor_parallel_dim(key: str) -> int | None:
    """The dim Megatron splits ``key`` on across tensor-parallel ranks; None: every rank holds all of it."""
    if COLUMN_PARALLEL.search(key):
        return 0
    if ROW_PARALLEL.search(key):
        return 1
    return None


# ----------------------------------------------------------------------------------------------
# Fused QKV ordering

CURRENT_QKV_AXES = ("heads", "qkv", "head_dim")  # what MegatronBertModel computes with


def qkv_axes(version: float) -> tuple[str, str, str]:
    """How a checkpoint of ``version`` orders the rows of its fused QKV, as Megatron-LM reads them:
    by version range, since the versions are floats that a file may store as ``1`` or ``1.0``."""
    if version < 0:
        raise CheckpointError(f"unknown Megatron checkpoint_version {version}: expected 0, 1.0, 2.0 or later")
    if version < 1.0:
        return ("qkv", "heads", "head_dim")  # version 0: all Q, then all K, then all V
    if version < 2.0:
        return ("heads", "head_dim", "qkv")  # version 1.0
    return CURRENT_QKV_AXES


def _reorder_qkv(t: torch.Tensor, stored: tuple[str, ...], wanted: tuple[str, ...], num_heads: int) -> torch.Tensor:
    rest = t.shape[1:]  # (hidden,) for a weight, () for a bias
    sizes = {"qkv": 3, "heads": num_heads, "head_dim": -1}
    t = t.reshape(*(sizes[axis] for axis in stored), *rest)
    t = t.permute(*(stored.index(axis) for axis in wanted), *range(3, t.dim()))
    return t.reshape(-1, *rest)  # (3 * hidden, *rest)


def qkv_to_current(t: torch.Tensor, version: float, num_heads: int) -> torch.Tensor:
    """Reorders fused QKV rows of one tensor-parallel shard into ``[heads, 3, head_dim]``."""
    return _reorder_qkv(t, qkv_axes(version), CURRENT_QKV_AXES, num_heads)


def qkv_from_current(t: torch.Tensor, version: float, num_heads: int) -> torch.Tensor:
    """The inverse of ``qkv_to_current``: what a checkpoint of ``version`` stores."""
    return _reorder_qkv(t, CURRENT_QKV_AXES, qkv_axes(version), num_heads)


# ----------------------------------------------------------------------------------------------
# Reading


@dataclass
class MegatronCheckpoint:
    """What was read, before the model's head count is known: shards still hold their stored QKV order."""

    shards: list[dict[str, torch.Tensor]]  # one per tensor-parallel rank, Megatron names
    checkpoint_version: float
    source: str
    config: dict | None = None  # from the checkpoint's args or a HF config.json, if any
    dropped: list[str] = field(default_factory=list)
    format: str = "state dict"  # what the file or folder was, for the log

    @property
    def vocab_rows(self) -> int | None:
        rows = [s["embedding.word_embeddings.weight"].shape[0] for s in self.shards if "embedding.word_embeddings.weight" in s]
        return sum(rows) if rows else None

    @property
    def has_pooler(self) -> bool:
        """Whether the checkpoint carries a pretrained pooler (Megatron-LM saves one with a binary head)."""
        return has_pooler(self.shards[0])

    @property
    def recorded_args(self) -> dict:
        """What the checkpoint says about the model's sizes, for ``MegatronBertConfig.resolve``: its
        ``config``, and the embedding rows as the vocab size when that names none (the rows may
        include padding, so a vocab file, when given, wins)."""
        args = dict(self.config or {})
        if args.get("vocab_size") is None and self.vocab_rows is not None:
            args["vocab_size"] = self.vocab_rows
        return args

    def state_dict(self, num_heads: int) -> dict[str, torch.Tensor]:
        """Merged across ranks, fused QKV in the current ``[heads, 3, head_dim]`` order."""
        tp = len(self.shards)
        if num_heads % tp:
            raise CheckpointError(f"{self.source}: {num_heads} attention heads cannot be split over {tp} tensor-parallel shards")
        shards = [_fuse_hf_qkv(s, num_heads // tp) for s in self.shards]
        keys = list(shards[0])
        for rank, shard in enumerate(shards[1:], start=1):
            if set(shard) != set(keys):
                diff = sorted(set(shard) ^ set(keys))
                raise CheckpointError(f"{self.source}: shard mp_rank_{rank:02d} has different keys than mp_rank_00: {diff[:10]}")
        merged = {}
        for key in keys:
            parts = [s[key] for s in shards]
            if QKV.search(key):
                parts = [qkv_to_current(p, self.checkpoint_version, num_heads // tp) for p in parts]
            dim = tensor_parallel_dim(key)
            merged[key] = parts[0] if tp == 1 or dim is None else torch.cat(parts, dim=dim)
        return merged


def _fuse_hf_qkv(state: dict, num_heads: int) -> dict:
    """HF megatron-bert keeps query/key/value apart; fuse them into Megatron's ``[heads, 3, head_dim]``."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".self_attention.query.weight") or k.endswith(".self_attention.query.bias")]:
        prefix, kind = key.rsplit(".query.", 1)
        q, k, v = (out.pop(f"{prefix}.{n}.{kind}") for n in ("query", "key", "value"))
        stacked = torch.stack([t.reshape(num_heads, -1, *t.shape[1:]) for t in (q, k, v)], dim=1)
        out[f"{prefix}.query_key_value.{kind}"] = stacked.reshape(-1, *q.shape[1:])
    return out


def _megatron_shard_files(path: Path) -> list[Path]:
    """The ``model_optim_rng.pt`` of every tensor-parallel rank under a Megatron save folder, rank order."""
    tracker = path / "latest_checkpointed_iteration.txt"
    if tracker.is_file():
        iteration = tracker.read_text().strip()
        path = path / (iteration if iteration == "release" else f"iter_{int(iteration):07d}")
        if not path.is_dir():
            raise MissingFileError(f"{tracker} names iteration {iteration!r} but {path} does not exist")
    rank_dirs = sorted(p for p in path.glob("mp_rank_*") if p.is_dir())
    if not rank_dirs:
        return [path / name for name in MEGATRON_FILES if (path / name).is_file()][:1]
    stages = [d.name for d in rank_dirs if re.fullmatch(r"mp_rank_\d+_(?!0+$)\d+", d.name)]
    if stages:
        raise CheckpointError(
            f"{path}: pipeline-parallel checkpoints ({', '.join(stages)}) are not supported; "
            "merge the pipeline stages with Megatron-LM's tools/checkpoint_util.py first"
        )
    files = []
    for rank, rank_dir in enumerate(rank_dirs):
        match = re.fullmatch(r"mp_rank_(\d+)(?:_0+)?", rank_dir.name)
        if match is None or int(match.group(1)) != rank:
            raise CheckpointError(f"{path}: expected mp_rank_00 .. mp_rank_{len(rank_dirs) - 1:02d}, found {rank_dir.name}")
        found = [rank_dir / name for name in MEGATRON_FILES if (rank_dir / name).is_file()]
        if not found:
            raise MissingFileError(f"{rank_dir}: no {' or '.join(MEGATRON_FILES)}")
        files.append(found[0])
    return files


def read_megatron_checkpoint(
    path: str | Path, checkpoint_version: float | None = None, allow_unsafe: bool = False
) -> MegatronCheckpoint:
    """Reads any Megatron BERT format listed in this module's docstring.

    ``checkpoint_version`` overrides the one stored in the file. When none is stored, a
    ``model_optim_rng.pt`` counts as version 0 (as Megatron-LM itself assumes) and a bare state dict
    as ``CHECKPOINT_VERSION``, which is what nmod and converters write.
    """
    path = Path(path)
    config, fmt = None, None
    if path.is_dir():
        files = _megatron_shard_files(path)
        if not files and (path / "config.json").is_file():  # a Hugging Face megatron-bert folder
            fmt = "Hugging Face megatron-bert folder"
            config = json.loads((path / "config.json").read_text())
            if config.get("model_type", "megatron-bert") != "megatron-bert":
                raise CheckpointError(
                    f"{path / 'config.json'}: model_type is {config.get('model_type')!r}, not 'megatron-bert'; "
                    "a post-LayerNorm BERT checkpoint loads with BERT, not MegatronBERT"
                )
            files = [find_weights_file(path)]
        if not files:
            raise MissingFileError(
                f"{path}: no Megatron checkpoint found; expected latest_checkpointed_iteration.txt, "
                f"mp_rank_XX/ folders, {' or '.join(MEGATRON_FILES)}, or config.json + {' or '.join(WEIGHT_FILES[:2])}"
            )
    elif path.is_file():
        files = [path]
    else:
        raise MissingFileError(f"Megatron checkpoint {path} does not exist")
    shards, dropped, versions = [], [], set()
    for file in files:
        weights, meta = split_weights(load_file(file, allow_unsafe), file)
        renamed, gone = rename(flatten(weights), MEGATRON_RENAMES)
        shards.append(renamed)
        dropped += gone
        if "checkpoint_version" in meta:
            versions.add(float(meta["checkpoint_version"]))
        elif "args" in meta or file.name in MEGATRON_FILES:
            versions.add(0.0)
        args = meta.get("args")
        if config is None and args is not None:
            # padded_vocab_size is the checkpoint's own padding (times its tensor-parallel size), not the model's.
            config = {k: v for k, v in vars(args).items() if k != "padded_vocab_size"}
    if len(versions) > 1:
        raise CheckpointError(f"{path}: shards disagree on checkpoint_version: {sorted(versions)}")
    stored = versions.pop() if versions else CHECKPOINT_VERSION
    version = float(checkpoint_version) if checkpoint_version is not None else stored
    if fmt is None:
        fmt = (f"Megatron-LM save folder, {len(files)} tensor-parallel shards" if len(files) > 1
               else f"Megatron-LM {files[0].name}" if files[0].name in MEGATRON_FILES or versions else "state dict")
    return MegatronCheckpoint(shards, version, str(path), config, dropped, f"{fmt}, checkpoint_version {version:g}")


# ----------------------------------------------------------------------------------------------
# Loading


def load_megatron_state_dict(model: nn.Module, checkpoint: MegatronCheckpoint | str | Path | dict) -> None:
    """Loads into a ``MegatronBertModel``; padded vocab rows are trimmed or zero-filled to fit."""
    if isinstance(checkpoint, dict):
        renamed, dropped = rename(flatten(split_weights(checkpoint, Path("<state dict>"))[0]), MEGATRON_RENAMES)
        checkpoint = MegatronCheckpoint([renamed], CHECKPOINT_VERSION, "<state dict>", None, dropped)
    elif not isinstance(checkpoint, MegatronCheckpoint):
        checkpoint = read_megatron_checkpoint(checkpoint)
    cfg = model.config
    state = fit_pooler(model, checkpoint.state_dict(cfg.num_attention_heads), checkpoint.source)
    key = "embedding.word_embeddings.weight"
    if key in state:
        state[key] = fit_vocab_rows(state[key], cfg.vocab_size, cfg.padded_vocab_size, checkpoint.source)
    key = "embedding.tokentype_embeddings.weight"
    if key not in state and "embedding.word_embeddings.weight" in state and key in model.state_dict():
        # Megatron pretrains without token types when it has no binary head (num_tokentypes=0); fine-tuning
        # adds them, zero so that the model starts out computing exactly what was pretrained.
        log.warning("%s has no token-type embeddings; starting them at zero", checkpoint.source)
        state[key] = torch.zeros_like(model.state_dict()[key])
    load_exact(model, state, checkpoint.source)
    log_loaded(checkpoint.source, checkpoint.format, type(model).__name__, len(state), checkpoint.dropped)


def fit_vocab_rows(weight: torch.Tensor, vocab_size: int, rows: int, source: str) -> torch.Tensor:
    """Checkpoints pad the vocab to their own multiple (128 x tensor-parallel size); rows past the real
    vocab are padding, so they are cut or zero-filled to ``rows``."""
    if weight.shape[0] < vocab_size:
        raise CheckpointError(
            f"{source}: word_embeddings has {weight.shape[0]} rows but the vocabulary has {vocab_size} tokens; "
            "is the vocab file the one this checkpoint was trained with?"
        )
    weight = weight[:rows]
    if weight.shape[0] < rows:
        weight = torch.cat([weight, weight.new_zeros(rows - weight.shape[0], *weight.shape[1:])])
    return weight
