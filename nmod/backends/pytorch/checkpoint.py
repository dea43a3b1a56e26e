"""Checkpoint folders: one weights file per module, the trainer state, and a manifest, renamed into place.

The manifest records each file's size and SHA-256 (hashed while it was written); before a checkpoint is
used its files are checked against it, and a damaged newest folder gives way to the newest intact one.
"""
from __future__ import annotations

import errno
import json
import os
import random
import re
import shutil
import tempfile
import zipfile
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from nmod.core.config import class_path, plain_permissions
from nmod.core.errors import CheckpointError, MissingFileError
from nmod.log import get_logger

from .serialization import FileDigest, file_digest, load_weights, save_hashed

__all__ = ["TrainerState", "check_fits", "save_checkpoint", "module_files", "latest_checkpoint", "newest_intact_checkpoint", "verify_checkpoint",
           "read_manifest", "rng_state", "set_rng_state", "CheckpointProblem", "CheckpointMismatchError",
           "CheckpointDamagedError", "CheckpointWriteError", "FORMAT"]

logger = get_logger(__name__)

_STEP_DIR = re.compile(r"^step-(\d+)$")
MANIFEST = "manifest.json"
TRAINER = "trainer.pt"
FORMAT = "nmod-checkpoint-2"  # the manifest lists every file with its size and SHA-256
_UNHASHED_FORMAT = "nmod-checkpoint-1"  # still read: files are checked by existence and their zip CRCs


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was written for other modules than the ones being trained."""


class CheckpointDamagedError(CheckpointError):
    """No checkpoint in the folder is intact: each one has a missing, truncated or altered file."""


class CheckpointWriteError(CheckpointError, OSError):
    """A checkpoint could not be written (disk full, permissions, I/O error); the earlier ones are untouched.

    Also an OSError, with the `errno` of the failure that caused it, so `except OSError` still sees it.
    """


@dataclass(frozen=True)
class CheckpointProblem:
    """One thing wrong with a checkpoint folder: the file and what is wrong with it."""

    file: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what}"


@dataclass
class TrainerState:
    """What a checkpoint holds besides the weights (its ``trainer.pt``): where the run is, and the state
    of its optimizer, loss scaler, master weights, lr policy and RNGs. Stored as a plain dict of these
    fields, which ``torch.load(weights_only=True)`` reads."""

    step: int  # optimizer steps completed
    epoch: int
    batch_in_epoch: int  # micro-batches of the epoch consumed: a run resumes mid-epoch
    optimizer: dict
    scaler: dict
    master: list  # the fp32 master weights (O2); empty at every other precision
    rng: dict  # rng_state()
    world_size: int  # the processes that wrote it: another count changes the data order
    lr_policy: Optional[dict] = None  # an LRPolicy's state_dict; None for a plain function
    seed: Optional[int] = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # not asdict: it would copy every tensor

    @classmethod
    def from_dict(cls, stored: dict, where: str | os.PathLike) -> "TrainerState":
        known = {f.name for f in fields(cls)}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in stored]
        if missing:
            raise CheckpointError(f"{where} lacks {missing}: it is not an nmod trainer state")
        return cls(**{k: v for k, v in stored.items() if k in known})


def module_files(modules: Sequence[torch.nn.Module]) -> tuple[Dict[str, torch.nn.Module], Dict[str, str]]:
    """``({file name: module}, {file name: class path})`` for a checkpoint's modules (``TrainableNM``s,
    named by ``module.name``)."""
    files = module_file_names([m.name for m in modules])
    by_file = {files[m.name]: m for m in modules}
    return by_file, {name: class_path(type(m)) for name, m in by_file.items()}


def save_checkpoint(folder: str | os.PathLike, *, step: int, modules: Dict[str, torch.nn.Module],
                    module_classes: Dict[str, str], trainer_state: TrainerState, keep: int) -> Path:
    """Write `folder/step-XXXXXXXX/` atomically, check it, then prune all but the newest `keep` checkpoints.

    The files go to a hidden temp folder, hashed as they are written, with a manifest of their sizes and
    SHA-256; the folder is renamed into place and its files' sizes checked against the manifest. Only
    then are old checkpoints pruned. A failed write removes the temp folder and raises
    CheckpointWriteError; the earlier checkpoints are never touched.
    """
    folder = Path(folder)
    final = folder / f"step-{step:08d}"
    writing = "the temporary folder"
    tmp: Optional[Path] = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        remove_interrupted_saves(folder)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=folder))
        plain_permissions(tmp)
        files: Dict[str, FileDigest] = {}
        for name, module in modules.items():
            writing = f"{name}.pt"
            files[writing] = save_hashed(module.state_dict(), tmp / writing)
        writing = TRAINER
        files[TRAINER] = save_hashed(trainer_state.to_dict(), tmp / TRAINER)
        writing = MANIFEST
        manifest = {"format": FORMAT, "step": step, "modules": module_classes,
                    "files": {f: d.to_json() for f, d in files.items()}}
        _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=2).encode())
        _fsync_dir(tmp)
        writing = f"the rename to {final.name}"
        _replace_dir(tmp, final)
        _fsync_dir(folder)
    except OSError as e:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(folder, final, f"{e} (writing {writing})", e) from e
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    # The files were hashed as they were written: reading them back, a size check is enough.
    problems = verify_checkpoint(final, hashes=False)
    if problems:
        shutil.rmtree(final, ignore_errors=True)
        raise _write_error(folder, final, f"it reads back damaged ({'; '.join(map(str, problems))})", None)
    # Folders of later steps are left alone: the run fell back from them (they were damaged) and will
    # write them again when it gets there.
    done = [p for p in _step_dirs(folder) if _step_of(p) <= step]
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


_INTERRUPTED = re.compile(r"^\.step-\d+\.")  # the temporary folders save_checkpoint and _replace_dir make


def remove_interrupted_saves(folder: Path) -> None:
    """Remove the hidden temporary folders of saves that were killed half-way (a hard kill leaves them;
    an exception does not). Only this run writes into its checkpoints folder, so none is in use."""
    stale = [p for p in folder.iterdir() if _INTERRUPTED.match(p.name) and p.is_dir()] if folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    if stale:
        logger.info(f"removed {len(stale)} temporary folder(s) an interrupted save left in {folder}: "
                    f"{', '.join(p.name for p in stale[:3])}")


def _write_error(folder: Path, final: Path, why: str, cause: Optional[OSError]) -> CheckpointWriteError:
    earlier = [p for p in _step_dirs(folder) if p != final]
    kept = (f"the earlier checkpoints in {folder} are intact (newest: {earlier[-1].name}) and none was pruned"
            if earlier else f"there is no earlier checkpoint in {folder}")
    error = CheckpointWriteError(f"Could not write checkpoint {final}: {why}. Training stops here; {kept}. "
                                 "Fix the cause (free disk space, for one) and run again to resume.")
    error.errno = cause.errno if cause is not None else errno.EIO
    return error


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    """Make a folder's entries (new files, a rename) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _replace_dir(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`; an existing `dst` (the same step, written again after a resume) is moved
    aside first and deleted only once `src` is in its place."""
    if not dst.exists():
        os.replace(src, dst)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{dst.name}.old.", dir=dst.parent))
    os.replace(dst, aside / dst.name)
    os.replace(src, dst)
    shutil.rmtree(aside, ignore_errors=True)


def _step_dirs(folder: Path) -> List[Path]:
    """Every `step-XXXXXXXX` folder, oldest first, whether or not it is complete."""
    found = [p for p in (folder.iterdir() if folder.is_dir() else []) if _STEP_DIR.match(p.name) and p.is_dir()]
    return sorted(found, key=_step_of)


def _step_of(path: Path) -> int:
    return int(_STEP_DIR.match(path.name).group(1))


def _complete_checkpoints(folder: Path) -> List[Path]:
    return [p for p in _step_dirs(folder) if (p / MANIFEST).is_file()]


def latest_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """The newest folder with a manifest, not checked further (see `newest_intact_checkpoint`)."""
    found = _complete_checkpoints(Path(folder))
    return found[-1] if found else None


def verify_checkpoint(path: str | os.PathLike, hashes: bool = True) -> List[CheckpointProblem]:
    """What is wrong with the checkpoint folder `path`: an empty list when it is intact.

    Every file the manifest lists must exist with its recorded size and (with `hashes`) SHA-256; the
    manifest must list a weights file per module and `trainer.pt`. A manifest of the first format
    records no hashes: its files must exist and pass their zip archives' CRC checks.
    """
    path = Path(path)
    try:
        manifest = read_manifest(path)
    except CheckpointError as e:
        return [CheckpointProblem(MANIFEST, "missing" if not (path / MANIFEST).exists() else
                                  f"unreadable ({e.__cause__ or e})")]
    fmt = manifest.get("format")
    if fmt == _UNHASHED_FORMAT:
        return _verify_unhashed(path, manifest)
    if fmt != FORMAT:
        return [CheckpointProblem(MANIFEST, f"unknown format {fmt!r}; this nmod reads {FORMAT!r} and "
                                            f"{_UNHASHED_FORMAT!r}")]
    files = manifest.get("files")
    if not isinstance(files, dict):
        return [CheckpointProblem(MANIFEST, "has no 'files' table")]
    problems = [CheckpointProblem(f, "not listed in the manifest")
                for f in _expected_files(manifest) if f not in files]
    for name, recorded in files.items():
        problems += _check_file(path / name, recorded, hashes)
    return problems


def _expected_files(manifest: dict) -> List[str]:
    return [f"{name}.pt" for name in manifest.get("modules", {})] + [TRAINER]


def _check_file(file: Path, recorded: dict, hashes: bool) -> List[CheckpointProblem]:
    if not isinstance(recorded, dict) or not isinstance(recorded.get("size"), int):
        return [CheckpointProblem(file.name, f"the manifest's entry {recorded!r} has no size")]
    if not file.is_file():
        return [CheckpointProblem(file.name, "missing")]
    size, recorded_size = file.stat().st_size, recorded["size"]
    if size != recorded_size:
        what = "truncated to" if size < recorded_size else "grown to"
        return [CheckpointProblem(file.name, f"{what} {size} bytes, the manifest records {recorded_size}")]
    if hashes:
        try:
            actual = file_digest(file)
        except OSError as e:
            return [CheckpointProblem(file.name, f"unreadable ({e})")]
        if actual.sha256 != recorded.get("sha256"):
            return [CheckpointProblem(file.name, f"altered: its SHA-256 is {actual.sha256[:16]}..., the manifest "
                                                 f"records {str(recorded.get('sha256'))[:16]}...")]
    return []


def _verify_unhashed(path: Path, manifest: dict) -> List[CheckpointProblem]:
    problems = []
    for name in _expected_files(manifest):
        file = path / name
        if not file.is_file():
            problems.append(CheckpointProblem(name, "missing"))
            continue
        try:
            with zipfile.ZipFile(file) as archive:
                bad = archive.testzip()  # reads every member and checks its CRC-32
        except (zipfile.BadZipFile, OSError, EOFError) as e:
            problems.append(CheckpointProblem(name, f"not a complete torch.save archive: {e}"))
            continue
        if bad is not None:
            problems.append(CheckpointProblem(name, f"CRC check fails for its member {bad}"))
    return problems


def newest_intact_checkpoint(folder: str | os.PathLike) -> Optional[Path]:
    """The newest `step-*` folder in `folder` that `verify_checkpoint` finds intact; None if there is none.

    Damaged newer folders are skipped with one warning naming each, its files and what is wrong. When
    folders exist but none is intact, CheckpointDamagedError lists what was found in each.
    """
    folder = Path(folder)
    damaged: List[tuple] = []
    for path in reversed(_step_dirs(folder)):
        problems = verify_checkpoint(path)
        if not problems:
            if damaged:
                logger.warning(f"Checkpoint {_describe(damaged)}; using {path}, the newest intact checkpoint, instead")
            if read_manifest(path).get("format") == _UNHASHED_FORMAT:
                logger.info(f"{path} was written before checkpoints recorded file hashes ({_UNHASHED_FORMAT}): "
                            "checked that its files exist and pass their zip CRC checks")
            return path
        damaged.append((path, problems))
    if damaged:
        raise CheckpointDamagedError(
            f"No intact checkpoint in {folder}: {_describe(damaged)}. Restore the files, or move the damaged "
            "folders away to start from scratch.")
    return None


def _describe(damaged: List[tuple]) -> str:
    return "; ".join(f"{path} is damaged ({'; '.join(map(str, problems))})" for path, problems in damaged)


def read_manifest(path: Path) -> dict:
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"Cannot read checkpoint manifest {path / MANIFEST}: {e}") from e
    if not isinstance(manifest, dict):
        raise CheckpointError(f"Cannot read checkpoint manifest {path / MANIFEST}: expected a JSON object, "
                              f"found {type(manifest).__name__}")
    return manifest


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
    """Load the newest intact checkpoint in `folder` into `modules` (TrainableNMs); return its path."""
    path = newest_intact_checkpoint(folder)
    if path is None:
        raise MissingFileError(f"No checkpoint (step-*/manifest.json) in {folder}")
    by_file, classes = module_files(modules)
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


def load_trainer_state(path: Path) -> TrainerState:
    return TrainerState.from_dict(load_weights(path / TRAINER), path / TRAINER)


def module_file_names(names: Sequence[str]) -> Dict[str, str]:
    return {n: re.sub(r"[^A-Za-z0-9_.-]", "_", n) for n in names}
