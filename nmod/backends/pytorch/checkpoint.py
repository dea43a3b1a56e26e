"""Checkpoint folders: one weights file per module, the trainer state, and a manifest, renamed into place."""
from __future__ import annotations

import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .serialization import load_weights

__all__ = ["check_fits", "save_checkpoint", "latest_checkpoint", "read_manifest", "rng_state", "set_rng_state", "CheckpointMismatchError"]

_STEP_DIR = re.compile(r"^step-(\d+)$")
MANIFEST = "manifest.json"
TRAINER = "trainer.pt"


class CheckpointMismatchError(ValueError):
    """The checkpoint was written for other modules than the ones being trained."""


def save_checkpoint(folder: str | os.PathLike, step: int, modules: Dict[str, torch.nn.Module],
                    module_classes: Dict[str, str], trainer_state: dict, keep: int) -> Path:
    """Write `folder/step-XXXXXXXX/` atomically (build a hidden temp folder, then rename it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / f"step-{step:08d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".step-{step:08d}.", dir=folder))
    try:
        for name, module in modules.items():
            _save_synced(module.state_dict(), tmp / f"{name}.pt")
        _save_synced(trainer_state, tmp / TRAINER)
        manifest = {"step": step, "modules": module_classes, "format": "nmod-checkpoint-1"}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in _complete_checkpoints(folder)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def _save_synced(obj, path: Path) -> None:
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def _complete_checkpoints(folder: Path) -> List[Path]:
    found = []
    for p in folder.iterdir() if folder.is_dir() else []:
        m = _STEP_DIR.match(p.name)
        if m and (p / MANIFEST).is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def latest_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    found = _complete_checkpoints(Path(folder))
    return found[-1] if found else None


def read_manifest(path: Path) -> dict:
    try:
        return json.loads((path / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"Cannot read checkpoint manifest {path / MANIFEST}: {e}") from None


def load_module_weights(path: Path, modules: Dict[str, torch.nn.Module], module_classes: Dict[str, str],
                        allow_extra: bool = False) -> None:
    """Check the manifest names the same modules and classes, then load every module strictly.

    Modules are matched by name; when only the names differ (auto-generated names depend on how many
    modules a process built before) but the classes line up in graph order, they are matched by order.
    `allow_extra` lets the checkpoint hold modules the graph does not use: an eval graph has no loss
    module, a training graph had one.
    """
    manifest = read_manifest(path)
    saved = manifest.get("modules", {})
    pairs = _pair_modules(saved, module_classes, allow_extra)
    if pairs is None:
        # Name the graph modules with no counterpart of their class, when there are such; else by name.
        missing = sorted(k for k, c in module_classes.items() if k not in saved and c not in saved.values())
        missing = missing or sorted(set(module_classes) - set(saved))
        extra = [] if allow_extra else sorted(set(saved) - set(module_classes))
        differ = sorted(k for k in set(saved) & set(module_classes) if saved[k] != module_classes[k])
        raise CheckpointMismatchError(
            f"Checkpoint {path} does not match the graph: modules not in the checkpoint {missing}, "
            f"checkpoint modules not in the graph {extra}, different classes {differ}"
        )
    states = {}
    for name, saved_name in pairs:  # check everything before touching any weights
        file = path / f"{saved_name}.pt"
        states[name] = load_weights(file)
        check_fits(modules[name], states[name], f"{file} (module '{name}')")
    for name, state in states.items():
        modules[name].load_state_dict(state, strict=True)


def _pair_modules(saved: Dict[str, str], wanted: Dict[str, str], allow_extra: bool) -> Optional[List[tuple]]:
    """(graph name, checkpoint name) pairs: by name, else by class in graph order; None if they don't fit."""
    if all(saved.get(k) == c for k, c in wanted.items()) and (allow_extra or len(saved) == len(wanted)):
        return [(name, name) for name in wanted]
    remaining = list(saved.items())
    pairs = []
    for name, cls in wanted.items():
        while remaining and remaining[0][1] != cls:
            if not allow_extra:
                return None
            remaining.pop(0)
        if not remaining:
            return None
        pairs.append((name, remaining.pop(0)[0]))
    return pairs if allow_extra or not remaining else None


def check_fits(module: torch.nn.Module, state: dict, where: str) -> None:
    """Raise CheckpointMismatchError listing missing, unexpected and mis-shaped keys."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in set(own) & set(state)
        if torch.is_tensor(state[k]) and state[k].shape != own[k].shape
    )
    if missing or unexpected or shapes:
        raise CheckpointMismatchError(
            f"{where} does not fit: missing keys {missing}, unexpected keys {unexpected}, "
            f"shape mismatches (checkpoint vs model) {shapes}"
        )


def load_latest(folder: str | os.PathLike, modules: Sequence[torch.nn.Module]) -> Path:
    """Load the newest complete checkpoint in `folder` into `modules` (TrainableNMs); return its path."""
    path = latest_checkpoint(folder)
    if path is None:
        raise FileNotFoundError(f"No complete checkpoint (step-*/manifest.json) in {folder}")
    files = module_file_names([m.name for m in modules])
    by_file = {files[m.name]: m for m in modules}
    classes = {k: f"{type(m).__module__}.{type(m).__qualname__}" for k, m in by_file.items()}
    load_module_weights(path, by_file, classes, allow_extra=True)
    return path


def rng_state() -> dict:
    """Every RNG a training step can draw from, in types torch.load(weights_only=True) accepts."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_to_tuple(state["python"]))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_tuple(value):
    if isinstance(value, list):
        return tuple(_to_tuple(v) for v in value)
    return value


def load_trainer_state(path: Path) -> dict:
    return load_weights(path / TRAINER)


def module_file_names(names: Sequence[str]) -> Dict[str, str]:
    return {n: re.sub(r"[^A-Za-z0-9_.-]", "_", n) for n in names}
