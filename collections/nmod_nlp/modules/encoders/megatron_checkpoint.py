"""Megatron BERT checkpoints into ``MegatronBertModel``: the names, the fused QKV order, the parallel layouts.

``read_megatron_checkpoint(path)`` recognises the format (``megatron_formats.FORMATS``: Megatron-LM's
``model_optim_rng.pt`` and save folders, megatron-core ``torch`` and ``torch_dist``, NeMo 1 ``.nemo``,
NeMo 2 folders, a Hugging Face ``megatron-bert`` folder, a bare state dict) and returns a
``MegatronCheckpoint``: the weights under the model's own names, one dict per tensor-parallel rank
(pipeline stages already joined), with what the checkpoint records about itself. ``load_into(model)``
then merges the ranks and loads. See docs/checkpoints.md for the table of formats.

Names: each family has one table (``NAMES``), applied after the wrappers' prefixes are stripped;
a replacement of None drops the key (pretraining and task heads, ``_extra_state``). The pooler is
kept for an encoder built with one (``fit_pooler``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from nmod.core.errors import CheckpointError
from nmod.log import get_logger

from .checkpoint_io import Renames, fit_pooler, flatten, has_pooler, load_exact, log_loaded, rename, split_weights

log = get_logger(__name__)

# What Megatron-LM and megatron-core write today: fused QKV rows [heads, 3, head_dim]. Earlier
# versions differ (``qkv_axes``); a bare state dict, which stores no version, is this.
CHECKPOINT_VERSION = 3.0

# The wrappers around the language model's own names: DDP's and NeMo O2's module., Megatron's and
# NeMo's model., language_model., HF's bert.
PREFIXES = r"^(?:module\.|model\.|language_model\.|bert\.)+"
_DROPPED: Renames = [
    (r"(^|\.)position_ids$|\._extra_state$", None),
    (r"^(?:lm_head|binary_head|output_layer|cls|qa_outputs|classifier)\.", None),
]
NAMES: dict[str, Renames] = {
    # Megatron-LM (legacy): transformer/attention before 2022, encoder/self_attention since.
    "megatron-lm": [
        (r"^transformer\.", "encoder."),
        (r"\.attention\.(query_key_value|dense)\.", r".self_attention.\1."),
    ],
    # megatron-core: TransformerBlock "encoder" (BERT) or "decoder", LayerNorms fused into the next
    # Linear (transformer-engine spec) or apart (local spec: input_layernorm, pre_mlp_layernorm).
    "megatron-core": [
        (r"^decoder\.", "encoder."),
        (r"\.self_attention\.linear_qkv\.layer_norm_(weight|bias)$", r".input_layernorm.\1"),
        (r"\.mlp\.linear_fc1\.layer_norm_(weight|bias)$", r".post_attention_layernorm.\1"),
        (r"\.pre_mlp_layernorm\.", ".post_attention_layernorm."),
        (r"\.linear_qkv\.", ".query_key_value."),
        (r"\.linear_proj\.", ".dense."),
        (r"\.linear_fc1\.", ".dense_h_to_4h."),
        (r"\.linear_fc2\.", ".dense_4h_to_h."),
    ],
    # transformers' MegatronBertModel (query/key/value apart: fused by _fuse_hf_qkv).
    "hf": [
        (r"^embeddings\.token_type_embeddings\.", "embedding.tokentype_embeddings."),
        (r"^embeddings\.", "embedding."),
        (r"^encoder\.layer\.(\d+)\.attention\.ln\.", r"encoder.layers.\1.input_layernorm."),
        (r"^encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.", r"encoder.layers.\1.self_attention.\2."),
        (r"^encoder\.layer\.(\d+)\.attention\.output\.dense\.", r"encoder.layers.\1.self_attention.dense."),
        (r"^encoder\.layer\.(\d+)\.ln\.", r"encoder.layers.\1.post_attention_layernorm."),
        (r"^encoder\.layer\.(\d+)\.intermediate\.dense\.", r"encoder.layers.\1.mlp.dense_h_to_4h."),
        (r"^encoder\.layer\.(\d+)\.output\.dense\.", r"encoder.layers.\1.mlp.dense_4h_to_h."),
        (r"^encoder\.ln\.", "encoder.final_layernorm."),
    ],
}


def names_of(keys) -> str:
    """Which family's names a state dict uses, from its keys (for files that do not say)."""
    keys = list(keys)
    if any(re.search(r"\.linear_(qkv|proj|fc1|fc2)\.", k) for k in keys):
        return "megatron-core"
    if any(re.search(r"(^|\.)encoder\.layer\.\d+\.attention\.self\.", k) for k in keys):
        return "hf"
    return "megatron-lm"


def to_model_names(state: dict[str, torch.Tensor], family: Optional[str] = None) -> tuple[dict, list[str]]:
    """``state`` under ``MegatronBertModel``'s names, and the keys dropped; ``family`` None: from the keys."""
    table = [(PREFIXES, ""), *_DROPPED, *NAMES[family or names_of(state)]]
    return rename(state, table)


# Tensor-parallel layout (model names): which dim each sharded weight is split on; all else is replicated.
COLUMN_PARALLEL = re.compile(r"(query_key_value|dense_h_to_4h)\.(weight|bias)$|word_embeddings\.weight$")
ROW_PARALLEL = re.compile(r"(self_attention\.dense|dense_4h_to_h)\.weight$")
QKV = re.compile(r"query_key_value\.(weight|bias)$")
LAYER = re.compile(r"^encoder\.layers\.(\d+)\.")


def tensor_parallel_dim(key: str) -> int | None:
    """The dim Megatron splits ``key`` on across tensor-parallel ranks; None: every rank holds all of it."""
    if COLUMN_PARALLEL.search(key):
        return 0
    if ROW_PARALLEL.search(key):
        return 1
    return None


def join_pipeline_stages(stages: list[dict[str, torch.Tensor]], where: str) -> dict[str, torch.Tensor]:
    """One state dict from pipeline stages (model names), their local layer numbers offset into global ones:
    stage k's layer i is layer i + the number of layers of the stages before it."""
    joined, offset = {}, 0
    for k, stage in enumerate(stages):
        local = sorted({int(m.group(1)) for key in stage if (m := LAYER.match(key))})
        if local and local != list(range(len(local))):
            raise CheckpointError(f"{where}: pipeline stage {k} holds layers {local}, expected 0..{len(local) - 1}")
        for key, value in stage.items():
            m = LAYER.match(key)
            new = f"encoder.layers.{int(m.group(1)) + offset}.{key[m.end():]}" if m else key
            if new in joined:
                raise CheckpointError(f"{where}: {new} is in two pipeline stages")
            joined[new] = value
        offset += len(local)
    return joined


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


def _fuse_hf_qkv(state: dict, num_heads: int) -> dict:
    """HF megatron-bert keeps query/key/value apart; fuse them into Megatron's ``[heads, 3, head_dim]``."""
    out = dict(state)
    for key in [k for k in state if k.endswith(".self_attention.query.weight") or k.endswith(".self_attention.query.bias")]:
        prefix, kind = key.rsplit(".query.", 1)
        q, k, v = (out.pop(f"{prefix}.{n}.{kind}") for n in ("query", "key", "value"))
        stacked = torch.stack([t.reshape(num_heads, -1, *t.shape[1:]) for t in (q, k, v)], dim=1)
        out[f"{prefix}.query_key_value.{kind}"] = stacked.reshape(-1, *q.shape[1:])
    return out


# ----------------------------------------------------------------------------------------------
# What was read


@dataclass
class MegatronCheckpoint:
    """A checkpoint read, before the model's head count is known: shards still hold their stored QKV order."""

    shards: list[dict[str, torch.Tensor]]  # one per tensor-parallel rank, model names, pipeline stages joined
    checkpoint_version: float
    source: str
    config: dict | None = None  # the sizes it records: Megatron's args, NeMo's model_config, a HF config.json
    dropped: list[str] = field(default_factory=list)
    format: str = "state dict"  # what the file or folder was, for the log and `inspect`
    vocab_file: Optional[Path] = None  # a vocabulary the checkpoint carries (.nemo, NeMo 2)
    lower_case: Optional[bool] = None  # what its tokenizer did, when it says
    iteration: Optional[str] = None
    pipeline_parallel: int = 1

    @property
    def tensor_parallel(self) -> int:
        return len(self.shards)

    @property
    def trained_tensor_parallel(self) -> int:
        """The tensor-parallel size it was trained with, which sets its vocabulary padding: what it records,
        else its shards; a single file that records none may have been merged from up to 8 ranks."""
        recorded = (self.config or {}).get("tensor_model_parallel_size")
        if isinstance(recorded, int) and recorded > 0:
            return recorded
        return self.tensor_parallel if self.tensor_parallel > 1 or self.format.startswith("NeMo") else 8

    @property
    def vocab_rows(self) -> int | None:
        key = "embedding.word_embeddings.weight"
        rows = [s[key].shape[0] for s in self.shards if key in s]
        return sum(rows) if rows else None

    @property
    def has_pooler(self) -> bool:
        """Whether it carries a pretrained pooler (Megatron-LM saves one with a binary head)."""
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
            raise CheckpointError(f"{self.source}: {num_heads} attention heads cannot be split over {tp} "
                                  f"tensor-parallel shards")
        shards = [_fuse_hf_qkv(s, num_heads // tp) for s in self.shards]
        keys = list(shards[0])
        for rank, shard in enumerate(shards[1:], start=1):
            if set(shard) != set(keys):
                diff = sorted(set(shard) ^ set(keys))
                raise CheckpointError(f"{self.source}: tensor-parallel rank {rank} has other keys than rank 0: "
                                      f"{diff[:10]}")
        merged = {}
        for key in keys:
            parts = [s[key] for s in shards]
            if QKV.search(key):
                parts = [qkv_to_current(p, self.checkpoint_version, num_heads // tp) for p in parts]
            dim = tensor_parallel_dim(key)
            merged[key] = parts[0] if tp == 1 or dim is None else torch.cat(parts, dim=dim)
        return merged

    def load_into(self, model: nn.Module) -> None:
        """Load into a ``MegatronBertModel``; padded vocab rows are trimmed or zero-filled to fit."""
        cfg = model.config
        state = fit_pooler(model, self.state_dict(cfg.num_attention_heads), self.source)
        key = "embedding.word_embeddings.weight"
        if key in state:
            state[key] = fit_vocab_rows(state[key], cfg.vocab_size, cfg.padded_vocab_size, self.source)
        key = "embedding.tokentype_embeddings.weight"
        if key not in state and "embedding.word_embeddings.weight" in state and key in model.state_dict():
            # Megatron pretrains without token types when it has no binary head (num_tokentypes=0);
            # fine-tuning adds them, zero so that the model starts out computing what was pretrained.
            log.warning("%s has no token-type embeddings; starting them at zero", self.source)
            state[key] = torch.zeros_like(model.state_dict()[key])
        load_exact(model, state, self.source)
        log_loaded(self.source, self.format, type(model).__name__, len(state), self.dropped)


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


def read_megatron_checkpoint(path: str | Path, checkpoint_version: float | None = None,
                             allow_unsafe: bool = False) -> MegatronCheckpoint:
    """Reads any format of ``megatron_formats.FORMATS``. ``checkpoint_version`` overrides the stored
    one (the fused QKV row order); when none is stored, a ``model_optim_rng.pt`` counts as version 0
    (as Megatron-LM itself assumes) and everything else as ``CHECKPOINT_VERSION``."""
    from .megatron_formats import read

    checkpoint = read(Path(path), allow_unsafe)
    if checkpoint_version is not None:
        checkpoint.checkpoint_version = float(checkpoint_version)
    return checkpoint


def load_megatron_state_dict(model: nn.Module, checkpoint: MegatronCheckpoint | str | Path | dict) -> None:
    """Loads a checkpoint (read, a path, or a state dict in any family's names) into a ``MegatronBertModel``."""
    if isinstance(checkpoint, dict):
        renamed, dropped = to_model_names(flatten(split_weights(checkpoint, Path("<state dict>"))[0]))
        checkpoint = MegatronCheckpoint([renamed], CHECKPOINT_VERSION, "<state dict>", None, dropped)
    elif not isinstance(checkpoint, MegatronCheckpoint):
        checkpoint = read_megatron_checkpoint(checkpoint)
    checkpoint.load_into(model)
