"""A self-contained model folder: a fine-tuned model that loads from this folder and nothing else.

Every recipe ends by writing ``work_dir/model/`` with ``save_model_folder``; ``load_model_folder``
reads it back into modules ready for ``nf.infer`` or eager calls (``nmod_nlp.inference``), and the
Hugging Face converter reads the same folder. Loading needs no Megatron config, no checkpoint path
and no recipe flag: everything is in the folder.

The format (``format_version: 1``)::

    model/
      model.yaml             what the folder holds (below)
      <name>.safetensors     one per module: its state dict (tensors only, no pickle)
      vocab.txt              the tokenizer's WordPiece vocabulary, one token a line

``model.yaml``::

    format: nmod-model-folder
    format_version: 1
    nmod_version: 0.1.0
    task: squad                         # the recipe's task name (squad, glue, text_classification, ...)
    modules:                            # module name -> how to build it and where its weights are
      encoder:
        config:                         # exactly what NeuralModule.export_to_config writes
          header: {full_spec: nmod_nlp.modules.encoders.megatron.MegatronBERT, nmod_version: 0.1.0}
          init_params: {config: {hidden_size: 32, ...}, attention_impl: auto}
        weights: encoder.safetensors
      qa_head:
        config: {header: {full_spec: nmod_nlp.modules.heads.classifiers.TokenClassifier, ...}, init_params: {...}}
        weights: qa_head.safetensors
    tokenizer:
      type: bert_wordpiece
      vocab_file: vocab.txt             # relative to the folder
      do_lower_case: true
      max_input_chars_per_word: 100
    labels: {}                          # label map name -> label names in class-id order
    extra: {}                           # task settings inference needs (e.g. SQuAD's max_seq_length)

A module's ``config`` is self-contained: a module that was built from files (an encoder from a
Megatron ``config.json`` and checkpoint) writes ``self_contained_init_params()`` instead of its
``init_params``, i.e. its resolved sizes with no path in them. A module whose init params still name
a file is refused when saving, so a folder never points outside itself.

The folder is written under a temporary name beside ``path`` and renamed into place, so a reader
never sees half a folder; an existing folder at ``path`` is replaced.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from nmod.core import config as cfg
from nmod.core.errors import CheckpointError, ConfigError, ConfigExportError, MissingFileError
from nmod.core.module import NeuralModule
from nmod.version import __version__

from .tokenizers import BertWordPieceTokenizer

__all__ = ["FORMAT", "FORMAT_VERSION", "MODEL_YAML", "VOCAB_FILE", "ModelFolder", "save_model_folder",
           "load_model_folder", "module_config"]

FORMAT = "nmod-model-folder"
FORMAT_VERSION = 1
MODEL_YAML = "model.yaml"
VOCAB_FILE = "vocab.txt"

# Init params that name files outside the folder; a module that has them set must say how to rebuild
# itself without them (``self_contained_init_params``).
_PATH_PARAMS = ("checkpoint", "config_file", "vocab_file", "pretrained_dir", "data_file", "head_checkpoint")


@dataclass
class ModelFolder:
    """A loaded model folder: modules by name (weights restored, in eval mode), tokenizer, labels."""

    path: Path
    task: str
    modules: dict = field(default_factory=dict)  # name -> NeuralModule
    tokenizer: Optional[BertWordPieceTokenizer] = None
    labels: dict = field(default_factory=dict)  # label map name -> [label names in class-id order]
    extra: dict = field(default_factory=dict)  # task settings the recipe recorded
    nmod_version: str = ""

    def __getitem__(self, name: str) -> NeuralModule:
        try:
            return self.modules[name]
        except KeyError:
            raise KeyError(f"{self.path / MODEL_YAML} has no module {name!r}; it has {sorted(self.modules)}") from None


def module_config(module: NeuralModule) -> dict:
    """The module's ``export_to_config`` dict, self-contained: no init param names a file."""
    config = module.to_config_dict()
    portable = getattr(module, "self_contained_init_params", None)
    where = f"{type(module).__name__} '{module.name}'"
    if portable is not None:
        config["init_params"] = {k: cfg.to_primitive(v, f"{where} init param '{k}'") for k, v in portable().items()}
    paths = {k: v for k, v in config["init_params"].items() if k in _PATH_PARAMS and v is not None}
    if paths:
        raise ConfigExportError(
            f"{where} was built from files ({paths}) that a model folder cannot point to; give "
            f"{type(module).__name__} a self_contained_init_params() method that returns its init params "
            f"without them (as MegatronBERT and BERT do)")
    return config


def _state_dict(module: NeuralModule, name: str) -> dict:
    if not isinstance(module, torch.nn.Module):
        raise ConfigExportError(f"module {name!r} ({type(module).__name__}) has no weights to save; "
                                f"pass only modules with weights (TrainableNM) to save_model_folder")
    # Copies: safetensors refuses tensors that share memory (tied weights), and views of larger storage.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in module.state_dict().items()}


def save_model_folder(
    path: str | os.PathLike,
    task: str,
    modules: Mapping[str, NeuralModule],
    tokenizer: BertWordPieceTokenizer,
    labels: Optional[Mapping[str, Any]] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Path:
    """Write the model folder at ``path`` (see the module docstring for its format); returns ``path``.

    ``modules``: name -> module with weights (e.g. ``{"encoder": encoder, "qa_head": qa_head}``); the
    names are the file names of the weights and the keys ``load_model_folder`` gives back.
    ``labels``: label map name -> label names in class-id order (e.g. ``{"labels": ["negative",
    "positive"]}``). ``extra``: the task's settings inference needs, as YAML primitives.
    """
    path = Path(path)
    if not modules:
        raise ConfigError("save_model_folder: no modules given; pass e.g. {'encoder': encoder, 'head': head}")
    for name in modules:
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith("."):
            raise ConfigError(f"save_model_folder: module name {name!r} is not usable as a file name")
    entries = {name: {"config": module_config(m), "weights": f"{name}.safetensors"} for name, m in modules.items()}
    vocab = Path(tokenizer.vocab_file)
    if not vocab.is_file():
        raise MissingFileError(f"save_model_folder: the tokenizer's vocab file {vocab} does not exist")
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "nmod_version": __version__,
        "task": str(task),
        "modules": entries,
        "tokenizer": {
            "type": "bert_wordpiece",
            "vocab_file": VOCAB_FILE,
            "do_lower_case": bool(tokenizer.do_lower_case),
            "max_input_chars_per_word": int(getattr(tokenizer, "_max_chars", 100)),
        },
        "labels": cfg.to_primitive(dict(labels or {}), "save_model_folder labels"),
        "extra": cfg.to_primitive(dict(extra or {}), "save_model_folder extra"),
    }

    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*"):  # what a save killed half-way left behind
        if stale.is_dir() and stale.suffix in (".tmp", ".old"):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    cfg.plain_permissions(tmp)
    try:
        for name, module in modules.items():
            save_file(_state_dict(module, name), str(tmp / entries[name]["weights"]),
                      metadata={"format": "pt", "module": name, "nmod_version": __version__})
            cfg.plain_permissions(tmp / entries[name]["weights"])  # safetensors writes owner-only files
        shutil.copyfile(vocab, tmp / VOCAB_FILE)
        cfg.write_yaml(tmp / MODEL_YAML, document)  # last: a folder with model.yaml is complete
        _replace_folder(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _replace_folder(new: Path, path: Path) -> None:
    """Rename ``new`` to ``path``; an existing ``path`` is moved aside first and removed after."""
    old = None
    if path.exists() or path.is_symlink():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
        os.rmdir(old)
        os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)  # put the previous folder back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def load_model_folder(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> ModelFolder:
    """Read a folder written by ``save_model_folder``: modules with their weights, in eval mode.

    Raises ``MissingFileError`` (no folder, no ``model.yaml``, a weights or vocab file it names is
    missing), ``ConfigError`` (``model.yaml`` is malformed, or written by a newer format) or
    ``CheckpointError`` (a weights file is unreadable or does not fit its module), each naming the file.
    """
    path = Path(path)
    if not path.is_dir():
        raise MissingFileError(f"model folder {path} does not exist (recipes write one to <work_dir>/model "
                               f"at the end of training)")
    yaml_path = path / MODEL_YAML
    if not yaml_path.is_file():
        raise MissingFileError(f"{path} is not a model folder: it has no {MODEL_YAML} (recipes write one to "
                               f"<work_dir>/model at the end of training; a checkpoints/ folder is not one)")
    doc = cfg.read_yaml(yaml_path)
    where = str(yaml_path)
    if doc.get("format") != FORMAT:
        raise ConfigError(f"{where}: 'format' is {doc.get('format')!r}, expected {FORMAT!r}")
    version = cfg.require(doc, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise ConfigError(f"{where}: format_version {version} was written by a newer nmod "
                          f"({doc.get('nmod_version')}); this nmod ({__version__}) reads up to {FORMAT_VERSION}")
    task = cfg.require(doc, "task", str, where)
    entries = cfg.require(doc, "modules", dict, where)
    if not entries:
        raise ConfigError(f"{where}: 'modules' is empty")
    labels = cfg.require(doc, "labels", dict, where) if "labels" in doc else {}
    extra = cfg.require(doc, "extra", dict, where) if "extra" in doc else {}

    modules = {}
    for name, entry in entries.items():
        entry_where = f"{where}: modules.{name}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{entry_where} must be a mapping with 'config' and 'weights'")
        config = cfg.require(entry, "config", dict, entry_where)
        weights = cfg.require(entry, "weights", str, entry_where)
        module = NeuralModule.from_config_dict(config, f"{entry_where}.config", name=name)
        _restore(module, path / weights, name)
        if isinstance(module, torch.nn.Module):
            module.to(map_location).eval()
        modules[name] = module

    tok = cfg.require(doc, "tokenizer", dict, where)
    if tok.get("type", "bert_wordpiece") != "bert_wordpiece":
        raise ConfigError(f"{where}: tokenizer type {tok.get('type')!r} is not one nmod reads ('bert_wordpiece')")
    vocab = path / cfg.require(tok, "vocab_file", str, f"{where}: tokenizer")
    if not vocab.is_file():
        raise MissingFileError(f"{vocab} is missing: {where} names it as the tokenizer's vocabulary")
    try:
        tokenizer = BertWordPieceTokenizer(vocab, do_lower_case=bool(cfg.require(tok, "do_lower_case", bool,
                                                                                  f"{where}: tokenizer")),
                                           max_input_chars_per_word=int(tok.get("max_input_chars_per_word", 100)))
    except ValueError as e:
        raise ConfigError(f"{vocab}: {e}") from None
    return ModelFolder(path=path, task=task, modules=modules, tokenizer=tokenizer, labels=labels, extra=extra,
                       nmod_version=str(doc.get("nmod_version", "")))


def _restore(module: NeuralModule, weights: Path, name: str) -> None:
    if not weights.is_file():
        raise MissingFileError(f"{weights} is missing: {weights.parent / MODEL_YAML} names it as the weights of "
                               f"module {name!r}")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({e})") from None
    if not isinstance(module, torch.nn.Module):
        raise CheckpointError(f"{weights}: module {name!r} ({type(module).__name__}) takes no weights")
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(f"{weights} does not fit module {name!r} ({type(module).__name__}): "
                              f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    shapes = [f"{k}: file {tuple(state[k].shape)}, module {tuple(own[k].shape)}"
              for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if shapes:
        raise CheckpointError(f"{weights} does not fit module {name!r} ({type(module).__name__}): "
                              f"other shapes: {'; '.join(shapes[:3])}")
    module.load_state_dict(state, strict=True)
