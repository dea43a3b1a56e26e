"""Every Megatron BERT checkpoint format people have today, read without Megatron-LM, megatron-core or NeMo.

``FORMATS`` is the table: how each is recognised and read. Each reader returns a
``MegatronCheckpoint`` (model names, one dict per tensor-parallel rank, pipeline stages joined).

| format | recognised by |
| --- | --- |
| NeMo 1 archive | a ``.nemo`` tar (plain or gzip), or its extracted folder: ``model_config.yaml`` + ``model_weights.ckpt`` (or one per ``mp_rank_XX/``, ``tp_rank_XX_pp_rank_XXX/``, or a ``model_weights/`` distributed checkpoint) |
| NeMo 2 folder | ``weights/`` (a distributed checkpoint, keys under ``module.``) + ``context/`` |
| megatron-core torch_dist | ``metadata.json`` with ``"sharded_backend": "torch_dist"`` (in the folder, or in the iteration ``latest_checkpointed_iteration.txt`` names) |
| Megatron save folder | ``latest_checkpointed_iteration.txt``, ``iter_NNNNNNN/`` or ``release/``, ``mp_rank_XX[_YYY]/model_optim_rng.pt``: Megatron-LM's and megatron-core's ``torch`` format |
| Hugging Face megatron-bert | ``config.json`` with ``model_type: megatron-bert`` + weights |
| a weights file | ``model_optim_rng.pt``, or a state dict (``.pt``, ``.bin``, ``.safetensors``) |

Pickled objects of classes from those frameworks are read as inert stand-ins (``safe_unpickle``).
"""
from __future__ import annotations

import atexit
import json
import re
import shutil
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from nmod.core.errors import CheckpointError, MissingFileError

from .checkpoint_io import WEIGHT_FILES, find_weights_file, flatten, load_file, split_weights
from .megatron_checkpoint import CHECKPOINT_VERSION, MegatronCheckpoint, join_pipeline_stages, names_of, to_model_names
from .safe_unpickle import is_standin, load_pickle, torch_load

__all__ = ["FORMATS", "Format", "recognise", "read", "MEGATRON_FILES", "TOKENIZER_LOWER_CASE"]

MEGATRON_FILES = ("model_optim_rng.pt", "model_rng.pt")
TRACKER = "latest_checkpointed_iteration.txt"
# Megatron-LM's --tokenizer-type and NeMo's tokenizer.type -> whether it lower-cases.
TOKENIZER_LOWER_CASE = {"BertWordPieceLowerCase": True, "BertWordPieceCase": False}
_RANK_DIR = re.compile(r"^mp_rank_(\d+)(?:_(\d+))?$")
_NEMO_WEIGHTS = re.compile(r"^(?:(?:mp_rank_(\d+)|tp_rank_(\d+)_pp_rank_(\d+))/)?model_weights\.ckpt$")


# ----------------------------------------------------------------------------------------------
# Shared pieces


def _iteration_dir(path: Path) -> Path:
    """The iteration folder of a save root (the one ``latest_checkpointed_iteration.txt`` names), or ``path``."""
    tracker = path / TRACKER
    if not tracker.is_file():
        return path
    iteration = tracker.read_text().strip()
    folder = path / (iteration if iteration == "release" else f"iter_{int(iteration):07d}")
    if not folder.is_dir():
        raise MissingFileError(f"{tracker} names iteration {iteration!r} but {folder} does not exist")
    return folder


def _args_config(args: Any) -> dict:
    """A Megatron ``args`` Namespace as config values; the checkpoint's own vocab padding is left out
    (it is padded for its tensor-parallel size, not the model's)."""
    values = {k: v for k, v in vars(args).items() if not is_standin(v)} if args is not None else {}
    values.pop("padded_vocab_size", None)
    return values


def _lower_case(tokenizer_type: Any) -> Optional[bool]:
    return TOKENIZER_LOWER_CASE.get(str(tokenizer_type)) if tokenizer_type is not None else None


def _join_grid(shards: dict[tuple[int, int], dict], where: str) -> list[dict]:
    """{(tp rank, pp stage): state} -> one state per tp rank, stages joined; the grid must be complete."""
    tps = sorted({t for t, _ in shards})
    pps = sorted({p for _, p in shards})
    missing = [f"tp {t} pp {p}" for t in tps for p in pps if (t, p) not in shards]
    if tps != list(range(len(tps))) or pps != list(range(len(pps))) or missing:
        raise CheckpointError(f"{where}: the tensor x pipeline parallel grid is incomplete: ranks {sorted(shards)}"
                              + (f", missing {missing}" if missing else ""))
    return [join_pipeline_stages([shards[(t, p)] for p in pps], where) for t in tps]


# ----------------------------------------------------------------------------------------------
# A weights file and Megatron's save folders


def read_file(path: Path, allow_unsafe: bool) -> MegatronCheckpoint:
    state, version, config, lower = _read_megatron_file(path, allow_unsafe)
    family = names_of(state)
    renamed, dropped = to_model_names(state, family)
    kind = (f"Megatron-LM {path.name}" if path.name in MEGATRON_FILES or config else "state dict") + \
        (" (megatron-core names)" if family == "megatron-core" else "")
    return MegatronCheckpoint([renamed], version, str(path), config, dropped, f"{kind}, checkpoint_version {version:g}",
                              lower_case=lower)


def _read_megatron_file(path: Path, allow_unsafe: bool) -> tuple[dict, float, Optional[dict], Optional[bool]]:
    weights, meta = split_weights(load_file(path, allow_unsafe), path)
    args = meta.get("args")
    if "checkpoint_version" in meta:
        version = float(meta["checkpoint_version"])
    elif args is not None or path.name in MEGATRON_FILES:
        version = 0.0  # what Megatron-LM assumes of a file that stores none
    else:
        version = CHECKPOINT_VERSION
    config = _args_config(args) if args is not None else None
    return flatten(weights), version, config, _lower_case(getattr(args, "tokenizer_type", None))


def read_save_folder(path: Path, allow_unsafe: bool) -> MegatronCheckpoint:
    """Megatron-LM's (and megatron-core's ``torch``) layout: a file per tensor-parallel rank and pipeline stage."""
    folder = _iteration_dir(path)
    ranks = {}
    for rank_dir in sorted(p for p in folder.glob("mp_rank_*") if p.is_dir()):
        match = _RANK_DIR.match(rank_dir.name)
        if match is None:
            raise CheckpointError(f"{rank_dir}: expected mp_rank_XX or mp_rank_XX_YYY (tensor rank, pipeline stage)")
        found = [rank_dir / name for name in MEGATRON_FILES if (rank_dir / name).is_file()]
        if not found:
            raise MissingFileError(f"{rank_dir}: no {' or '.join(MEGATRON_FILES)}")
        ranks[(int(match.group(1)), int(match.group(2) or 0))] = found[0]
    if not ranks:
        files = [folder / name for name in MEGATRON_FILES if (folder / name).is_file()]
        if not files:
            raise MissingFileError(f"{folder}: no mp_rank_XX/ folders and no {' or '.join(MEGATRON_FILES)}")
        checkpoint = read_file(files[0], allow_unsafe)
        checkpoint.iteration = folder.name if folder != path else None
        return checkpoint
    states, versions, config, lower, family, dropped = {}, set(), None, None, None, set()
    for rank, file in ranks.items():
        state, version, args, lower_case = _read_megatron_file(file, allow_unsafe)
        family = family or names_of(state)
        states[rank], gone = to_model_names(state, family)
        dropped.update(gone)
        versions.add(version)
        config, lower = config or args, lower if lower is not None else lower_case
    if len(versions) > 1:
        raise CheckpointError(f"{folder}: ranks disagree on checkpoint_version: {sorted(versions)}")
    shards = _join_grid(states, str(folder))
    pp = len({p for _, p in ranks})
    version = versions.pop()
    name = "megatron-core torch" if family == "megatron-core" else "Megatron-LM save folder"
    return MegatronCheckpoint(shards, version, str(path), config, sorted(dropped),
                              f"{name}, {len(shards)} tensor-parallel x {pp} pipeline, checkpoint_version {version:g}",
                              lower_case=lower, iteration=folder.name, pipeline_parallel=pp)


def _is_save_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    folder = _iteration_dir(path)
    return (path / TRACKER).is_file() or any(p.is_dir() for p in folder.glob("mp_rank_*")) or any(
        (folder / name).is_file() for name in MEGATRON_FILES)


# ----------------------------------------------------------------------------------------------
# megatron-core's distributed checkpoint (torch_dist), also inside NeMo 1 and NeMo 2


def _is_torch_dist(path: Path) -> bool:
    if not path.is_dir():
        return False
    folder = _iteration_dir(path)
    try:
        backend = json.loads((folder / "metadata.json").read_text()).get("sharded_backend")
    except (OSError, ValueError, AttributeError):
        backend = None
    return backend == "torch_dist" or (backend is None and (folder / ".metadata").is_file())


_SKIPPED = re.compile(r"^optimizer\.|(^|\.)rng_state|^rerun_state_machine_state|_extra_state$")
_STACKED = re.compile(r"^(.*?(?:^|\.)layers)\.(?!\d+\.)(.+)$")  # "encoder.layers.mlp..." with no layer number


def read_torch_dist(path: Path, allow_unsafe: bool, name: str = "megatron-core torch_dist") -> MegatronCheckpoint:
    """The model's tensors at their global shapes, on one process, whatever TP/PP layout wrote them."""
    from torch.distributed.checkpoint import FileSystemReader, load
    from torch.distributed.checkpoint.metadata import Metadata, TensorStorageMetadata

    folder = _iteration_dir(path)
    metadata_file = folder / ".metadata"
    if not metadata_file.is_file():
        raise MissingFileError(f"{folder}: no .metadata (a torch_dist checkpoint's index of its .distcp shards)")

    class Reader(FileSystemReader):
        def read_metadata(self, *args, **kwargs) -> Metadata:  # without megatron-core's MCoreMetadata class
            with metadata_file.open("rb") as f:
                raw = load_pickle(f)
            if not isinstance(raw, Metadata):
                raw = Metadata(state_dict_metadata=raw.state_dict_metadata,
                               planner_data=getattr(raw, "planner_data", None),
                               storage_data=getattr(raw, "storage_data", None))
            if getattr(raw, "storage_meta", None) is None:
                from torch.distributed.checkpoint.metadata import StorageMeta

                raw.storage_meta = StorageMeta()
            raw.storage_meta.load_id = self.load_id
            return raw

    reader = Reader(str(folder))
    entries = reader.read_metadata().state_dict_metadata
    wanted = {k: m for k, m in entries.items() if isinstance(m, TensorStorageMetadata) and not _SKIPPED.search(k)}
    for shard in sorted({s.relative_path for s in (reader.read_metadata().storage_data or {}).values()}):
        if not (folder / shard).is_file():
            raise MissingFileError(f"{folder / shard} is missing: {metadata_file} lists it as a shard of the checkpoint")
    state = {k: torch.empty(m.size, dtype=m.properties.dtype) for k, m in wanted.items()}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*torch.distributed is disabled.*")
        load(state, storage_reader=reader, no_dist=True)
    state = _unstack_layers(state)
    renamed, dropped = to_model_names(state, "megatron-core")
    dropped += sorted(k for k in entries if k not in wanted)
    common = folder / "common.pt"  # before megatron-core 0.19: the training args
    args = torch_load(common, allow_unsafe).get("args") if common.is_file() else None
    return MegatronCheckpoint([renamed], CHECKPOINT_VERSION, str(path), _args_config(args) if args else None, dropped,
                              f"{name}, {len(wanted)} tensors at their global shapes",
                              lower_case=_lower_case(getattr(args, "tokenizer_type", None)),
                              iteration=folder.name if folder != path else None)


def _unstack_layers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """megatron-core stacks homogeneous layers on a leading axis: ``encoder.layers.X`` is ``[L, ...]``."""
    out = {}
    for key, value in state.items():
        match = _STACKED.match(key)
        if match is None:
            out[key] = value
            continue
        for i, layer in enumerate(value.unbind(0)):
            out[f"{match.group(1)}.{i}.{match.group(2)}"] = layer
    return out


# ----------------------------------------------------------------------------------------------
# NeMo 1 (.nemo) and NeMo 2


class _Archive:
    """A ``.nemo`` tar or its extracted folder: member names, and members as files on disk (a tar's are
    extracted once, into a folder that lives as long as the process: the tokenizer reads the vocabulary
    after the weights are loaded)."""

    def __init__(self, path: Path):
        self.path = path
        self.tar = tarfile.open(path, "r:*") if path.is_file() else None
        if self.tar is not None:
            self.members = {m.name.removeprefix("./"): m for m in self.tar.getmembers()}
            self.root = Path(tempfile.mkdtemp(prefix="nmod-nemo-"))
            atexit.register(shutil.rmtree, self.root, ignore_errors=True)
        else:
            self.members = {str(p.relative_to(path)): p for p in path.rglob("*")}
            self.root = path

    def names(self) -> list[str]:
        return sorted(self.members)

    def file(self, name: str) -> Path:
        if self.tar is None:
            return self.path / name
        target = self.root / name
        if not target.exists():
            members = [m for n, m in self.members.items() if n == name or n.startswith(name + "/")]
            for member in members:
                if member.issym() or member.islnk() or ".." in Path(member.name).parts:
                    raise CheckpointError(f"{self.path}: refusing the link or path {member.name!r} in the archive")
            self.tar.extractall(self.root, members=members, filter="data")  # "./name" lands on name
        return target


def _is_nemo(path: Path) -> bool:
    if path.is_file():
        return path.suffix == ".nemo" or tarfile.is_tarfile(path)
    return path.is_dir() and (path / "model_config.yaml").is_file()


def _yaml(path: Path) -> dict:
    from nmod.core.config import read_yaml

    return read_yaml(path) or {}


def _nemo_config(cfg: dict) -> dict:
    """NeMo's model_config.yaml as config values (most keys are Megatron's argparse names)."""
    values = {k: v for k, v in cfg.items() if not isinstance(v, (dict, list))}
    values.setdefault("max_position_embeddings", cfg.get("encoder_seq_length"))
    values.setdefault("num_tokentypes", 2 if cfg.get("bert_binary_head", True) else 0)
    return values


def read_nemo(path: Path, allow_unsafe: bool) -> MegatronCheckpoint:
    archive = _Archive(path)
    names = archive.names()
    if "model_config.yaml" not in names:
        raise MissingFileError(f"{path}: no model_config.yaml in it; a NeMo archive holds model_config.yaml and "
                               f"model_weights.ckpt (found {names[:8]})")
    cfg = _yaml(archive.file("model_config.yaml"))
    if any(n == "model_weights" or n.startswith("model_weights/") for n in names) and not any(
            _NEMO_WEIGHTS.match(n) for n in names):  # sharded: a distributed checkpoint inside the archive
        checkpoint = read_torch_dist(archive.file("model_weights"), allow_unsafe, name="NeMo archive (torch_dist)")
    else:
        shards, family = {}, "megatron-core" if cfg.get("mcore_bert") else None
        weights = {n: _NEMO_WEIGHTS.match(n) for n in names if _NEMO_WEIGHTS.match(n)}
        if not weights:
            raise MissingFileError(f"{path}: no model_weights.ckpt in it (nor mp_rank_XX/ or tp_rank_XX_pp_rank_XXX/ "
                                   f"ones); found {names[:8]}")
        dropped = set()
        for name, match in weights.items():
            tp = int(match.group(1) or match.group(2) or 0)
            pp = int(match.group(3) or 0)
            state, _ = split_weights(load_file(archive.file(name), allow_unsafe), Path(name))
            state = flatten(state)
            shards[(tp, pp)], gone = to_model_names(state, family or names_of(state))
            dropped.update(gone)
        joined = _join_grid(shards, str(path))
        pp = len({p for _, p in shards})
        checkpoint = MegatronCheckpoint(joined, CHECKPOINT_VERSION, str(path), None, sorted(dropped),
                                        f"NeMo archive, {len(joined)} tensor-parallel x {pp} pipeline",
                                        pipeline_parallel=pp)
    checkpoint.source, checkpoint.config = str(path), _nemo_config(cfg)
    tokenizer = cfg.get("tokenizer") or {}
    vocab = str(tokenizer.get("vocab_file") or "")
    if vocab:
        wanted = vocab.removeprefix("nemo:")
        found = [n for n in names if n == wanted or n.endswith("/" + wanted) or Path(n).name == Path(wanted).name]
        if not found:
            raise MissingFileError(f"{path}: model_config.yaml names the vocabulary {vocab}, which the archive lacks")
        checkpoint.vocab_file = archive.file(found[0])
    checkpoint.lower_case = _lower_case(tokenizer.get("type"))
    return checkpoint


def _is_nemo2(path: Path) -> bool:
    return path.is_dir() and (path / "weights").is_dir() and (path / "context").is_dir()


def read_nemo2(path: Path, allow_unsafe: bool) -> MegatronCheckpoint:
    context = path / "context"
    model_yaml = context / "model.yaml"
    doc = _yaml(model_yaml) if model_yaml.is_file() else {}
    cfg = doc.get("config") if isinstance(doc.get("config"), dict) else {}
    bert_type = cfg.get("bert_type", "megatron")
    if bert_type != "megatron":
        raise CheckpointError(f"{model_yaml}: bert_type is {bert_type!r}; MegatronBERT reads Megatron's pre-LayerNorm "
                              f"BERT (bert_type 'megatron'), not a post-LayerNorm ('huggingface') one")
    checkpoint = read_torch_dist(path / "weights", allow_unsafe, name="NeMo 2 folder")
    checkpoint.source = str(path)
    if cfg:
        values = {k: v for k, v in cfg.items() if not isinstance(v, (dict, list))}
        values.setdefault("max_position_embeddings", cfg.get("seq_length"))
        values.setdefault("num_tokentypes", 2 if cfg.get("bert_binary_head", False) else 0)
        checkpoint.config = {**(checkpoint.config or {}), **values}
    tokenizer = doc.get("tokenizer") if isinstance(doc.get("tokenizer"), dict) else {}
    named = tokenizer.get("vocab_file")
    candidates = ([context / named] if named else []) + sorted(context.rglob("vocab.txt"))
    checkpoint.vocab_file = next((c for c in candidates if c.is_file()), None)
    if isinstance(tokenizer.get("do_lower_case"), bool):
        checkpoint.lower_case = tokenizer["do_lower_case"]
    return checkpoint


# ----------------------------------------------------------------------------------------------
# Hugging Face megatron-bert


def _model_type(config: Path) -> Optional[str]:
    try:
        return json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def _is_hf(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and _model_type(path / "config.json") == "megatron-bert"


def read_hf(path: Path, allow_unsafe: bool) -> MegatronCheckpoint:
    config = json.loads((path / "config.json").read_text())
    file = find_weights_file(path)
    state, _ = split_weights(load_file(file, allow_unsafe), file)
    renamed, dropped = to_model_names(flatten(state), "hf")
    return MegatronCheckpoint([renamed], CHECKPOINT_VERSION, str(path), config, dropped,
                              "Hugging Face megatron-bert folder")


# ----------------------------------------------------------------------------------------------
# The table


@dataclass(frozen=True)
class Format:
    name: str
    recognise: Callable[[Path], bool]
    read: Callable[[Path, bool], MegatronCheckpoint]
    looks_like: str


FORMATS = (
    Format("NeMo 1 archive", _is_nemo, read_nemo, ".nemo (or its folder): model_config.yaml + model_weights.ckpt"),
    Format("NeMo 2 folder", _is_nemo2, read_nemo2, "weights/ + context/"),
    Format("megatron-core torch_dist", _is_torch_dist, read_torch_dist, "metadata.json (torch_dist), .metadata, *.distcp"),
    Format("Megatron save folder", _is_save_folder, read_save_folder,
           f"{TRACKER}, iter_N/ or release/, mp_rank_XX[_YYY]/model_optim_rng.pt"),
    Format("Hugging Face megatron-bert", _is_hf, read_hf, f"config.json (megatron-bert) + {' or '.join(WEIGHT_FILES[:2])}"),
    Format("weights file", Path.is_file, read_file, "model_optim_rng.pt, or a state dict (.pt, .bin, .safetensors)"),
)


def recognise(path: Path) -> Optional[Format]:
    return next((f for f in FORMATS if f.recognise(path)), None)


def read(path: Path, allow_unsafe: bool = False) -> MegatronCheckpoint:
    if not path.exists():
        raise MissingFileError(f"Megatron checkpoint {path} does not exist")
    fmt = recognise(path)
    if fmt is None and (path / "config.json").is_file():
        model_type = _model_type(path / "config.json")
        raise CheckpointError(f"{path / 'config.json'}: model_type is {model_type!r}, not 'megatron-bert'; a "
                              f"post-LayerNorm BERT checkpoint loads with BERT, not MegatronBERT")
    if fmt is None:
        found = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
        understood = "; ".join(f"{f.name} ({f.looks_like})" for f in FORMATS)
        raise MissingFileError(f"{path}: no Megatron checkpoint found (it holds {', '.join(found[:10]) or 'nothing'}"
                               f"{', ...' if len(found) > 10 else ''}); nmod reads {understood}")
    return fmt.read(path, allow_unsafe)


def describe(path: Path, allow_unsafe: bool = False) -> dict[str, Any]:
    """What a checkpoint is, read from its files (``python -m nmod_nlp.convert inspect``): no model is built."""
    checkpoint = read(path, allow_unsafe)
    shard = checkpoint.shards[0]
    words = shard.get("embedding.word_embeddings.weight")
    layers = {int(m.group(1)) for key in shard if (m := re.match(r"^encoder\.layers\.(\d+)\.", key))}
    config = checkpoint.config or {}
    ffn = shard.get("encoder.layers.0.mlp.dense_h_to_4h.weight")
    positions = shard.get("embedding.position_embeddings.weight")
    return {
        "path": str(path),
        "format": checkpoint.format,
        "iteration": checkpoint.iteration,
        "checkpoint_version": checkpoint.checkpoint_version,
        "tensor_parallel": checkpoint.tensor_parallel,
        "pipeline_parallel": checkpoint.pipeline_parallel,
        "hidden_size": None if words is None else int(words.shape[1]),
        "num_layers": len(layers),
        "num_attention_heads": config.get("num_attention_heads"),
        "ffn_hidden_size": None if ffn is None else int(ffn.shape[0]) * checkpoint.tensor_parallel,
        "max_position_embeddings": None if positions is None else int(positions.shape[0]),
        "vocab_rows": checkpoint.vocab_rows,
        "vocab_file": None if checkpoint.vocab_file is None else str(checkpoint.vocab_file),
        "lower_case": checkpoint.lower_case,
        "pooler": checkpoint.has_pooler,
        "token_types": None if "embedding.tokentype_embeddings.weight" not in shard
        else int(shard["embedding.tokentype_embeddings.weight"].shape[0]),
        "tensors": sum(len(s) for s in checkpoint.shards),
        "ignored": len(checkpoint.dropped),
    }
