"""Writing the checkpoint formats the encoders read, so that tests, docs and benchmarks can make them:
Megatron-LM's save layout (tensor-parallel shards, pipeline stages, each ``checkpoint_version``'s QKV
order), megatron-core's ``torch`` and ``torch_dist`` formats, NeMo 1 ``.nemo`` archives and NeMo 2
folders.

The pickles these frameworks write name their own classes (``MCoreMetadata``, enums in ``args``);
the writers pickle classes from stand-in modules that exist only while writing, so a test reads the
files as a user without Megatron or NeMo does. It lives here rather than in ``nmod.testing`` because
it needs the encoders' own tables, and ``nmod`` never imports a collection; and rather than in
``encoders/`` because nmod only reads these checkpoints, it does not train them.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import enum
import io
import json
import pickle
import re
import sys
import tarfile
import types
import warnings
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from .modules.encoders.checkpoint_io import rename
from .modules.encoders.megatron_checkpoint import (
    CHECKPOINT_VERSION,
    PREFIXES,
    QKV,
    fit_vocab_rows,
    qkv_from_current,
    tensor_parallel_dim,
)
from .modules.encoders.megatron_config import padded_vocab_size

__all__ = ["save_megatron_checkpoint", "save_torch_dist", "save_nemo_archive", "save_nemo2_folder", "to_mcore_names"]

# MegatronBertModel's names -> megatron-core's (the transformer-engine spec: LayerNorms fused into the
# next Linear), the inverse of megatron_checkpoint.NAMES["megatron-core"].
MCORE_NAMES = [
    (r"\.input_layernorm\.(weight|bias)$", r".self_attention.linear_qkv.layer_norm_\1"),
    (r"\.post_attention_layernorm\.(weight|bias)$", r".mlp.linear_fc1.layer_norm_\1"),
    (r"\.self_attention\.query_key_value\.", ".self_attention.linear_qkv."),
    (r"\.self_attention\.dense\.", ".self_attention.linear_proj."),
    (r"\.mlp\.dense_h_to_4h\.", ".mlp.linear_fc1."),
    (r"\.mlp\.dense_4h_to_h\.", ".mlp.linear_fc2."),
]
_LAYER = re.compile(r"^encoder\.layers\.(\d+)\.")


def to_mcore_names(key: str) -> str:
    for pattern, replacement in MCORE_NAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _model_state(state: nn.Module | dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict]:
    """(state dict under MegatronBertModel's names, what Megatron's args would say of the model)."""
    recorded = {}
    if isinstance(state, nn.Module):
        cfg = getattr(state, "config", None)
        if cfg is not None:
            recorded = {"layernorm_epsilon": cfg.layernorm_epsilon, "hidden_dropout": cfg.hidden_dropout,
                        "attention_dropout": cfg.attention_dropout,
                        "openai_gelu": cfg.activation in ("gelu_new", "gelu_pytorch_tanh")}
        state = state.state_dict()
    state, _ = rename(dict(state), [(PREFIXES, "")])
    return state, recorded


def _sizes(state: dict[str, torch.Tensor], num_attention_heads: int, divisible_by: int) -> dict:
    embedding = state["embedding.word_embeddings.weight"]
    return {"hidden_size": embedding.shape[1],
            "num_layers": len({k.split(".")[2] for k in state if k.startswith("encoder.layers.")}),
            "num_attention_heads": num_attention_heads,
            "max_position_embeddings": state["embedding.position_embeddings.weight"].shape[0],
            "ffn_hidden_size": state["encoder.layers.0.mlp.dense_h_to_4h.weight"].shape[0],
            "make_vocab_size_divisible_by": divisible_by}


def _padded(state: dict, tp: int, divisible_by: int) -> tuple[dict, int]:
    embedding = state["embedding.word_embeddings.weight"]
    rows = padded_vocab_size(embedding.shape[0], divisible_by, tp)
    return {**state, "embedding.word_embeddings.weight": fit_vocab_rows(embedding, embedding.shape[0], rows, "writer")}, rows


def _shard(state: dict, tp: int, rank: int, version: float, num_heads: int) -> dict:
    """Tensor-parallel rank ``rank``'s part of every tensor, its fused QKV in ``version``'s row order."""
    out = {}
    for key, value in state.items():
        dim = tensor_parallel_dim(key)
        if dim is not None:
            value = value.chunk(tp, dim=dim)[rank]
        if QKV.search(key):
            value = qkv_from_current(value, version, num_heads // tp)
        out[key] = value.clone()  # a view would save the whole unsplit storage
    return out


def _stage(state: dict, pp: int, stage: int, num_layers: int) -> dict:
    """Pipeline stage ``stage``'s part, its layers numbered from 0 (embedding first, the rest last)."""
    per = num_layers // pp
    out = {}
    for key, value in state.items():
        m = _LAYER.match(key)
        if m:
            layer = int(m.group(1))
            if stage * per <= layer < (stage + 1) * per:
                out[f"encoder.layers.{layer - stage * per}.{key[m.end():]}"] = value
        elif (key.startswith("embedding.") and stage == 0) or (not key.startswith("embedding.") and stage == pp - 1):
            out[key] = value
    return out


def save_megatron_checkpoint(
    state: nn.Module | dict[str, torch.Tensor],
    directory: str | Path,
    num_attention_heads: int,
    tensor_parallel_size: int = 1,
    checkpoint_version: float = CHECKPOINT_VERSION,
    args: dict | None = None,
    iteration: int | str = "release",
    make_vocab_size_divisible_by: int = 128,
    pipeline_parallel_size: int = 1,
    names: str = "megatron-lm",
) -> list[Path]:
    """Writes Megatron's save layout: ``latest_checkpointed_iteration.txt`` and one
    ``<iteration>/mp_rank_XX[_YYY]/model_optim_rng.pt`` per tensor-parallel rank (and pipeline stage).

    ``state`` is a ``MegatronBertModel`` (or ``MegatronBERT``) or its state dict; a pooler in it is
    saved as Megatron-LM saves a BERT pretrained with a binary head (``language_model.pooler``).
    ``names="megatron-lm"``: the nested ``language_model`` layout, the older names (``transformer``,
    ``attention``) before ``CHECKPOINT_VERSION``; ``"megatron-core"``: megatron-core's ``torch`` format,
    a flat state dict of its names. Each shard's fused QKV is in the row order of
    ``checkpoint_version``. The vocab is zero-padded to a multiple of ``make_vocab_size_divisible_by *
    tp`` as Megatron does. The sizes go into the ``args`` it stores (``args`` adds to or overrides
    them), so the checkpoint describes itself. Returns the files.
    """
    state, recorded = _model_state(state)
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    if num_attention_heads % tp:
        raise ValueError(f"{num_attention_heads} heads cannot be split over {tp} tensor-parallel ranks")
    sizes = {**_sizes(state, num_attention_heads, make_vocab_size_divisible_by), **recorded}
    if sizes["num_layers"] % pp:
        raise ValueError(f"{sizes['num_layers']} layers cannot be split over {pp} pipeline stages")
    state, rows = _padded(state, tp, make_vocab_size_divisible_by)
    directory = Path(directory)
    folder = directory / (iteration if iteration == "release" else f"iter_{int(iteration):07d}")
    files = []
    for rank in range(tp):
        shard = _shard(state, tp, rank, checkpoint_version, num_attention_heads)
        for stage in range(pp):
            part = _stage(shard, pp, stage, sizes["num_layers"])
            model = {to_mcore_names(k): v for k, v in part.items()} if names == "megatron-core" else _nested(
                part, legacy=checkpoint_version < CHECKPOINT_VERSION)
            meta_args = argparse.Namespace(**{**sizes, **(args or {}), "tensor_model_parallel_size": tp,
                                              "pipeline_model_parallel_size": pp, "padded_vocab_size": rows})
            checkpoint = {"iteration": 0 if iteration == "release" else int(iteration),
                          "checkpoint_version": checkpoint_version, "args": meta_args, "model": model}
            name = f"mp_rank_{rank:02d}" + (f"_{stage:03d}" if pp > 1 else "")
            file = folder / name / "model_optim_rng.pt"
            file.parent.mkdir(parents=True, exist_ok=True)
            torch.save(checkpoint, file)
            files.append(file)
    (directory / "latest_checkpointed_iteration.txt").write_text(str(iteration))
    return files


def _nested(state: dict, legacy: bool) -> dict:
    """Megatron-LM's ``{"language_model": {"embedding": ..., "encoder" | "transformer": ..., "pooler": ...}}``."""
    embedding, encoder, pooler = {}, {}, {}
    for key, value in state.items():
        if key.startswith("embedding."):
            module, param = key[len("embedding."):].split(".", 1)
            embedding.setdefault(module, {})[param] = value
        elif key.startswith("pooler."):
            module, param = key[len("pooler."):].split(".", 1)
            pooler.setdefault(module, {})[param] = value
        else:
            name = key[len("encoder."):]
            encoder[re.sub(r"\.self_attention\.", ".attention.", name) if legacy else name] = value
    language_model = {"embedding": embedding, "transformer" if legacy else "encoder": encoder}
    if pooler:
        language_model["pooler"] = pooler
    return {"language_model": language_model} if embedding or encoder or pooler else {}


# ----------------------------------------------------------------------------------------------
# Classes of frameworks the reader does not have


@contextlib.contextmanager
def framework_classes() -> Iterator[types.SimpleNamespace]:
    """megatron-core's ``MCoreMetadata`` and ``AttnBackend`` enum, in modules that exist only inside the
    ``with``: what is pickled there names classes a reader without megatron-core cannot import."""
    from torch.distributed.checkpoint.metadata import Metadata

    names = ["megatron", "megatron.core", "megatron.core.transformer", "megatron.core.transformer.enums",
             "megatron.core.dist_checkpointing", "megatron.core.dist_checkpointing.strategies",
             "megatron.core.dist_checkpointing.strategies.torch"]
    modules = {n: types.ModuleType(n) for n in names if n not in sys.modules}

    class AttnBackend(enum.Enum):
        flash = 1
        auto = 5

    @dataclasses.dataclass
    class MCoreMetadata(Metadata):
        mcore_data: dict | None = None

    for cls, module in ((AttnBackend, "megatron.core.transformer.enums"),
                        (MCoreMetadata, "megatron.core.dist_checkpointing.strategies.torch")):
        cls.__module__, cls.__qualname__ = module, cls.__name__
    sys.modules.update(modules)
    try:
        if "megatron.core.transformer.enums" in modules:
            modules["megatron.core.transformer.enums"].AttnBackend = AttnBackend
        if "megatron.core.dist_checkpointing.strategies.torch" in modules:
            modules["megatron.core.dist_checkpointing.strategies.torch"].MCoreMetadata = MCoreMetadata
        yield types.SimpleNamespace(AttnBackend=AttnBackend, MCoreMetadata=MCoreMetadata)
    finally:
        for name in modules:
            sys.modules.pop(name, None)


def save_torch_dist(state: nn.Module | dict[str, torch.Tensor], directory: str | Path, num_attention_heads: int,
                    prefix: str = "", stack_layers: bool = True, args: dict | None = None, iteration: int | None = 100,
                    make_vocab_size_divisible_by: int = 128, common: bool = True) -> Path:
    """megatron-core's ``torch_dist`` layout: ``latest_checkpointed_iteration.txt`` and ``iter_N/`` with
    ``metadata.json``, ``.metadata`` (an ``MCoreMetadata``), ``__0_0.distcp`` and ``common.pt`` (the
    ``args``, with an ``AttnBackend`` enum in them). Tensors have their global shapes, megatron-core's
    names under ``prefix`` (NeMo 2: ``module.``); ``stack_layers`` puts the layers on a leading axis
    (``encoder.layers.self_attention.linear_qkv.weight`` is ``[L, 3h, h]``), else ``encoder.layers.N.*``.
    Beside the model: an optimizer tensor, RNG state and an ``_extra_state`` byte buffer, which a reader
    must skip. ``iteration=None`` writes the checkpoint into ``directory`` itself, with no tracker (NeMo's
    layout). Returns the folder of the checkpoint."""
    from torch.distributed.checkpoint import FileSystemWriter, save

    state, recorded = _model_state(state)
    sizes = {**_sizes(state, num_attention_heads, make_vocab_size_divisible_by), **recorded}
    state, rows = _padded(state, 1, make_vocab_size_divisible_by)
    mcore = {to_mcore_names(k): v.clone() for k, v in state.items()}
    if stack_layers:
        layers: dict[str, list] = {}
        for key in sorted(k for k in mcore if _LAYER.match(k)):
            m = _LAYER.match(key)
            layers.setdefault(f"encoder.layers.{key[m.end():]}", []).append((int(m.group(1)), mcore.pop(key)))
        mcore.update({k: torch.stack([t for _, t in sorted(v)]) for k, v in layers.items()})
    tensors = {f"{prefix}{k}": v for k, v in mcore.items()}
    tensors[f"{prefix}encoder.layers.self_attention.core_attention._extra_state"] = io.BytesIO(b"te state")
    tensors["optimizer.state.exp_avg.embedding.word_embeddings.weight"] = torch.zeros(3)
    tensors["rng_state"] = torch.zeros(2)
    directory = Path(directory)
    folder = directory / f"iter_{iteration:07d}" if iteration is not None else directory
    folder.mkdir(parents=True, exist_ok=True)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        save(tensors, storage_writer=FileSystemWriter(str(folder)), no_dist=True)
    with framework_classes() as fw:
        plain = pickle.loads((folder / ".metadata").read_bytes())
        as_mcore = fw.MCoreMetadata(state_dict_metadata=plain.state_dict_metadata, planner_data=plain.planner_data,
                                    storage_data=plain.storage_data, mcore_data={"singleton_local_shards": False})
        (folder / ".metadata").write_bytes(pickle.dumps(as_mcore))
        if common:
            meta_args = argparse.Namespace(**{**sizes, **(args or {}), "padded_vocab_size": rows,
                                              "attention_backend": fw.AttnBackend.auto})
            torch.save({"args": meta_args, "checkpoint_version": CHECKPOINT_VERSION, "iteration": iteration},
                       folder / "common.pt")
    (folder / "metadata.json").write_text(json.dumps({"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                                                      "common_backend": "torch", "common_backend_version": 1}))
    if iteration is not None:
        (directory / "latest_checkpointed_iteration.txt").write_text(str(iteration))
    return folder


def _nemo_config(sizes: dict, vocab_name: str, mcore: bool, tp: int, pp: int, lower_case: bool) -> dict:
    return {"num_layers": sizes["num_layers"], "hidden_size": sizes["hidden_size"],
            "ffn_hidden_size": sizes["ffn_hidden_size"], "num_attention_heads": sizes["num_attention_heads"],
            "max_position_embeddings": sizes["max_position_embeddings"], "encoder_seq_length": 512,
            "layernorm_epsilon": sizes.get("layernorm_epsilon", 1e-5), "hidden_dropout": 0.1, "attention_dropout": 0.1,
            "make_vocab_size_divisible_by": sizes["make_vocab_size_divisible_by"], "bert_binary_head": True,
            "mcore_bert": mcore, "megatron_amp_O2": False, "tensor_model_parallel_size": tp,
            "pipeline_model_parallel_size": pp,
            "tokenizer": {"library": "megatron",
                          "type": "BertWordPieceLowerCase" if lower_case else "BertWordPieceCase",
                          "vocab_file": f"nemo:{vocab_name}", "model": None, "merge_file": None}}


def save_nemo_archive(state: nn.Module | dict[str, torch.Tensor], path: str | Path, num_attention_heads: int,
                      vocab_file: str | Path, tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1,
                      mcore: bool = False, o2: bool = False, gzip: bool = False, lower_case: bool = True,
                      make_vocab_size_divisible_by: int = 128) -> Path:
    """A NeMo 1 ``.nemo`` archive: ``model_config.yaml``, the vocabulary as ``<hash>_vocab.txt`` (named
    ``nemo:<hash>_vocab.txt`` in the config), and ``model_weights.ckpt`` (or one per
    ``mp_rank_XX/`` / ``tp_rank_XX_pp_rank_XXX/``) with NeMo's keys: ``model.language_model.*``
    (``model.module.`` with ``o2``), or megatron-core names under ``model.`` with ``mcore``."""
    from nmod.core.config import _yaml

    state, recorded = _model_state(state)
    tp, pp = tensor_parallel_size, pipeline_parallel_size
    sizes = {**_sizes(state, num_attention_heads, make_vocab_size_divisible_by), **recorded}
    state, _ = _padded(state, tp, make_vocab_size_divisible_by)
    prefix = "model.module." if o2 else "model."
    vocab_name = "a1b2c3d4e5_vocab.txt"
    members: dict[str, bytes] = {vocab_name: Path(vocab_file).read_bytes()}
    buffer = io.StringIO()
    _yaml().dump(_nemo_config(sizes, vocab_name, mcore, tp, pp, lower_case), buffer)
    members["model_config.yaml"] = buffer.getvalue().encode()
    for rank in range(tp):
        shard = _shard(state, tp, rank, CHECKPOINT_VERSION, num_attention_heads)
        for stage in range(pp):
            part = _stage(shard, pp, stage, sizes["num_layers"])
            if mcore:
                flat = {f"{prefix}{to_mcore_names(k)}": v for k, v in part.items()}
            else:
                flat = {f"{prefix}language_model.{k}": v for k, v in part.items()}
            folder = "" if tp == pp == 1 else (f"mp_rank_{rank:02d}/" if pp == 1 else
                                               f"tp_rank_{rank:02d}_pp_rank_{stage:03d}/")
            data = io.BytesIO()
            torch.save(flat, data)
            members[f"{folder}model_weights.ckpt"] = data.getvalue()
    path = Path(path)
    with tarfile.open(path, "w:gz" if gzip else "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def save_nemo2_folder(state: nn.Module | dict[str, torch.Tensor], path: str | Path, num_attention_heads: int,
                      vocab_file: str | Path, make_vocab_size_divisible_by: int = 128) -> Path:
    """A NeMo 2 checkpoint folder: ``weights/`` (a torch_dist checkpoint, keys under ``module.``) and
    ``context/`` (``model.yaml`` with the BERT config and tokenizer, the vocabulary as an artifact)."""
    from nmod.core.config import write_yaml

    model_state, recorded = _model_state(state)
    sizes = {**_sizes(model_state, num_attention_heads, make_vocab_size_divisible_by), **recorded}
    path = Path(path)
    save_torch_dist(state, path / "weights", num_attention_heads, prefix="module.", common=False, iteration=None,
                    make_vocab_size_divisible_by=make_vocab_size_divisible_by)
    (path / "context" / "nemo_tokenizer").mkdir(parents=True)
    (path / "context" / "nemo_tokenizer" / "vocab.txt").write_bytes(Path(vocab_file).read_bytes())
    write_yaml(path / "context" / "model.yaml", {
        "_target_": "nemo.collections.llm.bert.model.base.BertModel",
        "config": {"_target_": "nemo.collections.llm.bert.model.bert.MegatronBertConfig", "bert_type": "megatron",
                   "num_layers": sizes["num_layers"], "hidden_size": sizes["hidden_size"],
                   "ffn_hidden_size": sizes["ffn_hidden_size"], "num_attention_heads": sizes["num_attention_heads"],
                   "seq_length": sizes["max_position_embeddings"], "layernorm_epsilon": sizes.get("layernorm_epsilon", 1e-5),
                   "hidden_dropout": 0.1, "attention_dropout": 0.1, "num_tokentypes": 2, "bert_binary_head": True,
                   "make_vocab_size_divisible_by": make_vocab_size_divisible_by},
        "tokenizer": {"_target_": "nemo.collections.common.tokenizers.huggingface.auto_tokenizer.AutoTokenizer",
                      "vocab_file": "nemo_tokenizer/vocab.txt", "do_lower_case": True}})
    return path
