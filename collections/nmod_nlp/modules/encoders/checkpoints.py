"""Reading and writing the checkpoint formats the encoders load. See ``docs/checkpoints.md``.

Megatron-LM (``MegatronBERT``):
  * a bare state dict (``.pt``/``.bin``/``.safetensors``) in Megatron naming, or nmod's own saved weights;
  * ``model_optim_rng.pt``: ``{"model": {"language_model": {"embedding": ..., "transformer"|"encoder": ...}},
    "checkpoint_version": v, "args": Namespace}``; the fused QKV rows are ordered by ``v``
    (0: ``[3, heads, head_dim]``, 1.0: ``[heads, head_dim, 3]``, 2.0 and later: ``[heads, 3, head_dim]``);
  * a tensor-parallel folder ``<dir>/latest_checkpointed_iteration.txt`` + ``release/mp_rank_XX/``
    (or ``iter_NNNNNNN/``), merged here: column-parallel weights (QKV, ``dense_h_to_4h``, vocab-parallel
    word embeddings) concatenate on dim 0, row-parallel ones (attention ``dense``, ``dense_4h_to_h``) on dim 1;
  * a Hugging Face ``megatron-bert`` folder (``config.json`` + weights).
Hugging Face BERT (``BERT``): ``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``.

Everything is renamed onto the model's own parameter names with a table of regular expressions;
keys that belong to pretraining or task heads (pooler, LM head, NSP head, classifiers) are dropped
and logged; anything else that does not fit is an error that lists missing and unexpected keys.
"""
from __future__ import annotations

import argparse
import json
import logging
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from nmod.backends.pytorch.serialization import UnsafeCheckpointError

log = logging.getLogger(__name__)

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
MEGATRON_FILES = ("model_optim_rng.pt", "model_rng.pt")

# ----------------------------------------------------------------------------------------------
# Generic file reading


def load_file(path: str | Path, allow_unsafe: bool = False) -> dict:
    """A ``.safetensors`` file, a sharded HF index, or anything ``torch.load`` reads, on the CPU."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {path} does not exist")
    if path.name.endswith(".index.json"):
        weight_map = json.loads(path.read_text())["weight_map"]
        state = {}
        for shard in sorted(set(weight_map.values())):
            state.update(load_file(path.parent / shard, allow_unsafe))
        return state
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file as load_safetensors

        return load_safetensors(str(path))
    if path.suffix in (".index", ".meta") or ".ckpt" in path.name:
        raise ValueError(
            f"{path} looks like a TensorFlow checkpoint; convert it to PyTorch first "
            "(transformers' convert_bert_original_tf_checkpoint_to_pytorch)"
        )
    # mmap: a training checkpoint's optimizer state (twice the weights) is never read into memory.
    mmap = zipfile.is_zipfile(path)  # pre-1.6 torch files cannot be mapped
    try:
        with torch.serialization.safe_globals(_megatron_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=not allow_unsafe, mmap=mmap)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise ValueError(f"{path}: not a readable PyTorch checkpoint ({err})") from None
        raise UnsafeCheckpointError(
            f"{path} holds Python objects beyond tensors, argparse.Namespace and numpy RNG state, which "
            f"torch.load(weights_only=True) refuses ({str(err).splitlines()[-1][:300]}). Only if you trust "
            "its source, pass allow_unsafe_checkpoint=True (--allow_unsafe_checkpoint on the command line)."
        ) from None
    except (RuntimeError, KeyError, EOFError, ValueError) as err:
        raise ValueError(f"{path}: not a readable PyTorch checkpoint ({type(err).__name__}: {err})") from None


def _megatron_safe_globals() -> list:
    """What a Megatron ``model_optim_rng.pt`` holds besides tensors: its ``args`` and numpy RNG state."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    uint32 = type(np.dtype(np.uint32))
    return [argparse.Namespace, np.ndarray, np.dtype, uint32, _reconstruct, (_reconstruct, "numpy.core.multiarray._reconstruct")]


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


def _unwrap(obj: dict, source: Path) -> tuple[dict, dict]:
    """Splits a checkpoint object into (weights, metadata): Megatron's ``model`` or a ``state_dict``."""
    if not isinstance(obj, dict):
        raise ValueError(f"{source}: expected a dict of tensors or a Megatron checkpoint dict, found {type(obj).__name__}")
    if any(re.fullmatch(r"model\d+", key) for key in obj):
        raise ValueError(f"{source}: virtual-pipeline checkpoints (model0, model1, ...) are not supported")
    for container in ("model", "state_dict", "module"):
        if isinstance(obj.get(container), dict):
            meta = {key: value for key, value in obj.items() if key != container}
            return obj[container], meta
    return obj, {}


# ----------------------------------------------------------------------------------------------
# Megatron naming


# (pattern, replacement) applied in order after the prefixes are stripped; replacement None = drop.
MEGATRON_RENAMES: list[tuple[str, str | None]] = [
    (r"^(?:module\.|model\.|language_model\.|bert\.)+", ""),
    (r"(^|\.)position_ids$|\._extra_state$", None),
    (r"^(?:pooler|lm_head|binary_head|output_layer|cls|qa_outputs|classifier)\.", None),
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


def rename(state: dict[str, torch.Tensor], renames: list[tuple[str, str | None]]) -> tuple[dict, list[str]]:
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


def qkv_to_current(t: torch.Tensor, version: float, num_heads: int) -> torch.Tensor:
    """Reorders fused QKV rows of one tensor-parallel shard into ``[heads, 3, head_dim]`` (version >= 2)."""
    if version >= 2.0:
        return t
    rest = t.shape[1:]
    if version == 0:  # [3, heads, head_dim]
        t = t.reshape(3, num_heads, -1, *rest).transpose(0, 1)
    elif version == 1.0:  # [heads, head_dim, 3]
        t = t.reshape(num_heads, -1, 3, *rest).transpose(1, 2)
    else:
        raise ValueError(f"unknown Megatron checkpoint_version {version}: expected 0, 1.0, 2.0 or later")
    return t.reshape(-1, *rest)


def qkv_from_current(t: torch.Tensor, version: float, num_heads: int) -> torch.Tensor:
    """The inverse of ``qkv_to_current``: what a checkpoint of ``version`` stores."""
    if version >= 2.0:
        return t
    rest = t.shape[1:]
    t = t.reshape(num_heads, 3, -1, *rest)
    t = t.transpose(0, 1) if version == 0 else t.transpose(1, 2)
    return t.reshape(-1, *rest)


@dataclass
class MegatronCheckpoint:
    """What was read, before the model's head count is known: shards still hold their stored QKV order."""

    shards: list[dict[str, torch.Tensor]]  # one per tensor-parallel rank, Megatron names
    checkpoint_version: float
    source: str
    config: dict | None = None  # from the checkpoint's args or a HF config.json, if any
    dropped: list[str] = field(default_factory=list)

    @property
    def vocab_rows(self) -> int | None:
        rows = [s["embedding.word_embeddings.weight"].shape[0] for s in self.shards if "embedding.word_embeddings.weight" in s]
        return sum(rows) if rows else None

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
            raise ValueError(f"{self.source}: {num_heads} attention heads cannot be split over {tp} tensor-parallel shards")
        shards = [_fuse_hf_qkv(s, num_heads // tp) for s in self.shards]
        keys = list(shards[0])
        for rank, shard in enumerate(shards[1:], start=1):
            if set(shard) != set(keys):
                diff = sorted(set(shard) ^ set(keys))
                raise ValueError(f"{self.source}: shard mp_rank_{rank:02d} has different keys than mp_rank_00: {diff[:10]}")
        merged = {}
        for key in keys:
            parts = [s[key] for s in shards]
            if QKV.search(key):
                parts = [qkv_to_current(p, self.checkpoint_version, num_heads // tp) for p in parts]
            if tp == 1:
                merged[key] = parts[0]
            elif COLUMN_PARALLEL.search(key):
                merged[key] = torch.cat(parts, dim=0)
            elif ROW_PARALLEL.search(key):
                merged[key] = torch.cat(parts, dim=1)
            else:
                merged[key] = parts[0]
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
            raise FileNotFoundError(f"{tracker} names iteration {iteration!r} but {path} does not exist")
    rank_dirs = sorted(p for p in path.glob("mp_rank_*") if p.is_dir())
    if not rank_dirs:
        return [path / name for name in MEGATRON_FILES if (path / name).is_file()][:1]
    stages = [d.name for d in rank_dirs if re.fullmatch(r"mp_rank_\d+_(?!0+$)\d+", d.name)]
    if stages:
        raise ValueError(
            f"{path}: pipeline-parallel checkpoints ({', '.join(stages)}) are not supported; "
            "merge the pipeline stages with Megatron-LM's tools/checkpoint_util.py first"
        )
    files = []
    for rank, rank_dir in enumerate(rank_dirs):
        match = re.fullmatch(r"mp_rank_(\d+)(?:_0+)?", rank_dir.name)
        if match is None or int(match.group(1)) != rank:
            raise ValueError(f"{path}: expected mp_rank_00 .. mp_rank_{len(rank_dirs) - 1:02d}, found {rank_dir.name}")
        found = [rank_dir / name for name in MEGATRON_FILES if (rank_dir / name).is_file()]
        if not found:
            raise FileNotFoundError(f"{rank_dir}: no {' or '.join(MEGATRON_FILES)}")
        files.append(found[0])
    return files


def read_megatron_checkpoint(
    path: str | Path, checkpoint_version: float | None = None, allow_unsafe: bool = False
) -> MegatronCheckpoint:
    """Reads any Megatron BERT format listed in this module's docstring.

    ``checkpoint_version`` overrides the one stored in the file. When none is stored, a
    ``model_optim_rng.pt`` counts as version 0 (as Megatron-LM itself assumes) and a bare state dict
    as the current ordering, which is what nmod and converters write.
    """
    path = Path(path)
    config = None
    if path.is_dir():
        files = _megatron_shard_files(path)
        if not files and (path / "config.json").is_file():  # a Hugging Face megatron-bert folder
            config = json.loads((path / "config.json").read_text())
            if config.get("model_type", "megatron-bert") != "megatron-bert":
                raise ValueError(
                    f"{path / 'config.json'}: model_type is {config.get('model_type')!r}, not 'megatron-bert'; "
                    "a post-LayerNorm BERT checkpoint loads with BERT, not MegatronBERT"
                )
            files = [_hf_weights_file(path)]
        if not files:
            raise FileNotFoundError(
                f"{path}: no Megatron checkpoint found; expected latest_checkpointed_iteration.txt, "
                f"mp_rank_XX/ folders, {' or '.join(MEGATRON_FILES)}, or config.json + {' or '.join(WEIGHT_FILES[:2])}"
            )
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"Megatron checkpoint {path} does not exist")
    shards, dropped, versions = [], [], set()
    for file in files:
        weights, meta = _unwrap(load_file(file, allow_unsafe), file)
        renamed, gone = rename(flatten(weights), MEGATRON_RENAMES)
        shards.append(renamed)
        dropped += gone
        if "checkpoint_version" in meta:
            versions.add(float(meta["checkpoint_version"]))
        elif "args" in meta or file.name in MEGATRON_FILES:
            versions.add(0.0)
        args = meta.get("args")
        if config is None and args is not None:
            config = {k: v for k, v in vars(args).items() if k != "padded_vocab_size"}
    if len(versions) > 1:
        raise ValueError(f"{path}: shards disagree on checkpoint_version: {sorted(versions)}")
    stored = versions.pop() if versions else 3.0
    version = float(checkpoint_version) if checkpoint_version is not None else stored
    if dropped:
        log.info("%s: ignoring %d keys outside the encoder (e.g. %s)", path, len(dropped), dropped[:3])
    return MegatronCheckpoint(shards, version, str(path), config, dropped)


def load_megatron_state_dict(model: nn.Module, checkpoint: MegatronCheckpoint | str | Path | dict) -> None:
    """Loads into a ``MegatronBertModel``; padded vocab rows are trimmed or zero-filled to fit."""
    if isinstance(checkpoint, dict):
        renamed, dropped = rename(flatten(_unwrap(checkpoint, Path("<state dict>"))[0]), MEGATRON_RENAMES)
        checkpoint = MegatronCheckpoint([renamed], 3.0, "<state dict>", None, dropped)
    elif not isinstance(checkpoint, MegatronCheckpoint):
        checkpoint = read_megatron_checkpoint(checkpoint)
    cfg = model.config
    state = checkpoint.state_dict(cfg.num_attention_heads)
    key = "embedding.word_embeddings.weight"
    if key in state:
        state[key] = _fit_vocab_rows(state[key], cfg.vocab_size, cfg.padded_vocab_size, checkpoint.source)
    key = "embedding.tokentype_embeddings.weight"
    if key not in state and "embedding.word_embeddings.weight" in state and key in model.state_dict():
        # Megatron pretrains without token types when it has no binary head (num_tokentypes=0); fine-tuning
        # adds them, zero so that the model starts out computing exactly what was pretrained.
        log.warning("%s has no token-type embeddings; starting them at zero", checkpoint.source)
        state[key] = torch.zeros_like(model.state_dict()[key])
    load_exact(model, state, checkpoint.source)


def _fit_vocab_rows(weight: torch.Tensor, vocab_size: int, rows: int, source: str) -> torch.Tensor:
    """Checkpoints pad the vocab to their own multiple (128 x tensor-parallel size); rows past the real
    vocab are padding, so they are cut or zero-filled to the model's padding."""
    if weight.shape[0] < vocab_size:
        raise ValueError(
            f"{source}: word_embeddings has {weight.shape[0]} rows but the vocabulary has {vocab_size} tokens; "
            "is the vocab file the one this checkpoint was trained with?"
        )
    weight = weight[:rows]
    if weight.shape[0] < rows:
        weight = torch.cat([weight, weight.new_zeros(rows - weight.shape[0], *weight.shape[1:])])
    return weight


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
        raise ValueError("\n".join(lines))
    with torch.no_grad():
        for name, tensor in expected.items():
            tensor.copy_(state[name])


# ----------------------------------------------------------------------------------------------
# Megatron writer: used by tests and docs to produce real tensor-parallel layouts


def save_megatron_checkpoint(
    state: nn.Module | dict[str, torch.Tensor],
    directory: str | Path,
    num_attention_heads: int,
    tensor_parallel_size: int = 1,
    checkpoint_version: float = 3.0,
    args: dict | None = None,
    iteration: int | str = "release",
    make_vocab_size_divisible_by: int = 128,
) -> list[Path]:
    """Writes Megatron-LM's save layout: ``latest_checkpointed_iteration.txt`` and one
    ``<iteration>/mp_rank_XX/model_optim_rng.pt`` per tensor-parallel rank.

    ``state`` is a ``MegatronBertModel`` (or ``MegatronBERT``) or its state dict. Versions below 3.0
    use the pre-2022 names (``transformer``, ``attention``); each shard's fused QKV is stored in the
    row order of ``checkpoint_version``. The vocab is zero-padded to a multiple of
    ``make_vocab_size_divisible_by * tp`` as Megatron does. The sizes go into the ``args`` Megatron
    stores (``args`` adds to or overrides them), so the checkpoint describes itself. Returns the files.
    """
    recorded = {}
    if isinstance(state, nn.Module):
        cfg = getattr(state, "config", None)
        if cfg is not None:  # what Megatron's args would say about this model
            recorded = {
                "layernorm_epsilon": cfg.layernorm_epsilon,
                "hidden_dropout": cfg.hidden_dropout,
                "attention_dropout": cfg.attention_dropout,
                "openai_gelu": cfg.activation in ("gelu_new", "gelu_pytorch_tanh"),
            }
        state = state.state_dict()
    state, _ = rename(dict(state), MEGATRON_RENAMES[:1])
    tp = tensor_parallel_size
    if num_attention_heads % tp:
        raise ValueError(f"{num_attention_heads} heads cannot be split over {tp} tensor-parallel ranks")
    embedding = state["embedding.word_embeddings.weight"]
    sizes = {
        "hidden_size": embedding.shape[1],
        "num_layers": len({k.split(".")[2] for k in state if k.startswith("encoder.layers.")}),
        "num_attention_heads": num_attention_heads,
        "max_position_embeddings": state["embedding.position_embeddings.weight"].shape[0],
        "ffn_hidden_size": state["encoder.layers.0.mlp.dense_h_to_4h.weight"].shape[0],
        "make_vocab_size_divisible_by": make_vocab_size_divisible_by,
        **recorded,
    }
    multiple = make_vocab_size_divisible_by * tp
    state["embedding.word_embeddings.weight"] = _fit_vocab_rows(
        embedding, embedding.shape[0], -(-embedding.shape[0] // multiple) * multiple, "save_megatron_checkpoint"
    )
    legacy = checkpoint_version < 3.0
    directory = Path(directory)
    folder = directory / (iteration if iteration == "release" else f"iter_{int(iteration):07d}")
    files = []
    for rank in range(tp):
        embedding_tree, encoder = {}, {}
        for key, value in state.items():
            if COLUMN_PARALLEL.search(key):
                value = value.chunk(tp, dim=0)[rank]
            elif ROW_PARALLEL.search(key):
                value = value.chunk(tp, dim=1)[rank]
            if QKV.search(key):
                value = qkv_from_current(value, checkpoint_version, num_attention_heads // tp)
            value = value.clone()  # a view would save the whole unsplit storage
            if key.startswith("embedding."):
                module, param = key[len("embedding."):].split(".", 1)
                embedding_tree.setdefault(module, {})[param] = value
            else:
                name = key[len("encoder."):]
                encoder[re.sub(r"\.self_attention\.", ".attention.", name) if legacy else name] = value
        meta_args = argparse.Namespace(
            **{
                **sizes,
                **(args or {}),
                "tensor_model_parallel_size": tp,
                "padded_vocab_size": state["embedding.word_embeddings.weight"].shape[0],
            }
        )
        checkpoint = {
            "iteration": 0 if iteration == "release" else int(iteration),
            "checkpoint_version": checkpoint_version,
            "args": meta_args,
            "model": {"language_model": {"embedding": embedding_tree, "transformer" if legacy else "encoder": encoder}},
        }
        file = folder / f"mp_rank_{rank:02d}" / "model_optim_rng.pt"
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, file)
        files.append(file)
    (directory / "latest_checkpointed_iteration.txt").write_text(str(iteration))
    return files


# ----------------------------------------------------------------------------------------------
# Hugging Face BERT


HF_BERT_RENAMES: list[tuple[str, str | None]] = [
    (r"^(?:module\.|model\.)+", ""),
    (r"(^|\.)position_ids$", None),
    (r"^(?:bert\.)?(?:pooler|cls|qa_outputs|classifier)\.", None),
    (r"^bert\.", ""),
    (r"\.gamma$", ".weight"),  # TF-era names
    (r"\.beta$", ".bias"),
]


def _hf_weights_file(directory: Path) -> Path:
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"{directory}: no weights; expected one of {', '.join(WEIGHT_FILES)}")


def read_hf_checkpoint(path: str | Path, config_file: str | Path | None = None) -> tuple[dict, dict, Path]:
    """``(config, state_dict, weights_file)`` from a HF folder, or from a weights file plus its config.

    The config is ``config_file`` if given, else the ``config.json`` next to the weights.
    """
    path = Path(path)
    if path.is_dir():
        weights_file = _hf_weights_file(path)
    elif path.is_file():
        weights_file = path
    else:
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    config_path = Path(config_file) if config_file else weights_file.parent / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(
            f"{config_path} does not exist; a Hugging Face checkpoint needs its config.json "
            "(pass it with --bert_config)"
        )
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path}: not valid JSON ({err})") from err
    state, _ = _unwrap(load_file(weights_file), weights_file)
    return config, flatten(state), weights_file


def load_bert_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Loads HF BERT weights (``bert.``-prefixed or not, ``gamma``/``beta`` or not) into a ``BertModel``."""
    renamed, dropped = rename(state, HF_BERT_RENAMES)
    if dropped:
        log.info("%s: ignoring %d keys outside the encoder (e.g. %s)", source, len(dropped), dropped[:3])
    load_exact(model, renamed, source)
