"""A recipe's run folder (``--work_dir``): what an earlier run left in it, and whether this run may write there.

The rule (docs/recipes.md, "One run, one folder"): a run writes only into a folder that holds no
other run, or into its own earlier run when asked to by name (``--resume``). A folder that holds a
run is never overwritten and never resumed silently: the recipe stops before writing anything and
says what is there. ``--checkpoint_dir`` names checkpoints to start from (NeMo's flag) and must hold
checkpoints nmod can read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from nmod.core.config import read_yaml
from nmod.core.errors import ConfigError, MissingFileError

__all__ = ["ARGS_FILE", "ExistingRun", "find_run", "check_run_folder", "checkpoint_folder"]

ARGS_FILE = "args.yaml"
CHECKPOINTS = "checkpoints"
MODEL = "model"
_STEP = re.compile(r"^step-\d+$")
_NEMO_CHECKPOINT = re.compile(r"-STEP-\d+\.pt$")  # NeMo 0.11: <Module>-STEP-<n>.pt and trainer-STEP-<n>.pt


@dataclass
class ExistingRun:
    """What a run left in its folder."""

    path: Path
    kind: Optional[str]  # e.g. "glue:mrpc", from args.yaml; None when the file predates the record
    arguments: dict = field(default_factory=dict)
    checkpoints: list = field(default_factory=list)  # step-XXXXXXXX names, oldest first
    finished: bool = False  # it wrote model/model.yaml

    def describe(self) -> str:
        what = f"a {'finished' if self.finished else 'unfinished'} {self.kind or 'nmod'} run"
        parts = [f"{ARGS_FILE}"] if self.arguments else []
        if self.checkpoints:
            parts.append(f"{CHECKPOINTS}/ up to {self.checkpoints[-1]}")
        if self.finished:
            parts.append(f"{MODEL}/")
        return f"{what} ({', '.join(parts)})" if parts else what


def find_run(work_dir: str | Path) -> Optional[ExistingRun]:
    """The run in ``work_dir``: its ``args.yaml``, checkpoints or model folder; None when there is none."""
    path = Path(work_dir)
    if not path.is_dir():
        return None
    args_file = path / ARGS_FILE
    checkpoints = sorted(p.name for p in (path / CHECKPOINTS).glob("step-*") if _STEP.match(p.name) and p.is_dir()) \
        if (path / CHECKPOINTS).is_dir() else []
    finished = (path / MODEL / "model.yaml").is_file()
    if not args_file.is_file() and not checkpoints and not finished:
        return None
    kind, arguments = None, {}
    if args_file.is_file():
        try:
            doc = read_yaml(args_file) or {}
        except Exception:  # a damaged args.yaml still marks the folder as a run's
            doc = {}
        kind = (doc.get("run") or {}).get("kind") if isinstance(doc.get("run"), dict) else None
        arguments = doc.get("arguments") if isinstance(doc.get("arguments"), dict) else {}
    return ExistingRun(path, kind, arguments, checkpoints, finished)


def check_run_folder(work_dir: str | Path, kind: str, resume: bool, mode_trains: bool,
                     graph: Optional[Mapping[str, object]] = None) -> Optional[ExistingRun]:
    """Refuse a ``work_dir`` this run may not write into; returns the run it resumes, if any.

    ``graph``: the arguments that decide the graph's modules (the task, the head); a resumed run must
    have the same ones, else its checkpoints would not fit. Checked again once the modules are built.
    """
    existing = find_run(work_dir)
    if resume and not mode_trains:
        raise ConfigError("--resume continues a training run; --mode eval and test read --checkpoint_dir")
    if existing is None:
        if resume:
            raise MissingFileError(f"--resume: --work_dir {work_dir} holds no run to resume (no {ARGS_FILE}, "
                                   f"{CHECKPOINTS}/ or {MODEL}/); drop --resume to start a new run there")
        return None
    here = f"--work_dir {work_dir} already holds {existing.describe()}"
    if existing.kind is not None and existing.kind != kind:
        raise ConfigError(f"{here}, not a {kind} run; choose another --work_dir (nothing was written)")
    if not resume:
        advice = "pass --resume to continue it, or choose" if mode_trains and existing.checkpoints else "choose"
        raise ConfigError(f"{here}; {advice} another --work_dir (nothing was written)")
    if not existing.checkpoints:
        raise MissingFileError(f"--resume: {here} but no checkpoint in {Path(work_dir) / CHECKPOINTS} to resume "
                               f"from; choose another --work_dir")
    differ = {k: (existing.arguments.get(k), v) for k, v in (graph or {}).items()
              if k in existing.arguments and existing.arguments.get(k) != v}
    if differ:
        flags = ", ".join(f"--{k} {old!r} there, {new!r} now" for k, (old, new) in sorted(differ.items()))
        raise ConfigError(f"--resume: {here}, trained with other modules ({flags}); its checkpoints do not fit "
                          f"this graph; choose another --work_dir")
    return existing


def checkpoint_folder(path: str | Path) -> Path:
    """The folder of nmod checkpoints ``--checkpoint_dir`` names: itself, or the ``checkpoints/`` of a run
    folder. Anything else is an error naming what was found there."""
    path = Path(path)
    if not path.exists():
        raise MissingFileError(f"--checkpoint_dir {path} does not exist")
    if not path.is_dir():
        raise ConfigError(f"--checkpoint_dir {path} is a file; pass the folder of step-XXXXXXXX/ checkpoints "
                          f"(a run's <work_dir>/{CHECKPOINTS})")
    for folder in (path, path / CHECKPOINTS):
        if any(_STEP.match(p.name) and (p / "manifest.json").is_file() for p in folder.glob("step-*")):
            return folder
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())
    nemo = [e for e in entries if _NEMO_CHECKPOINT.search(e)]
    if nemo:
        raise ConfigError(f"--checkpoint_dir {path} holds NeMo 0.11 checkpoints ({', '.join(nemo[:3])}"
                          f"{', ...' if len(nemo) > 3 else ''}), not nmod's step-XXXXXXXX/ folders; load a NeMo "
                          f"module's weights with module.restore_from(file) instead")
    found = ", ".join(entries[:8]) + (", ..." if len(entries) > 8 else "") if entries else "nothing"
    raise MissingFileError(f"--checkpoint_dir {path} holds no checkpoint nmod can read (found {found}); expected "
                           f"step-XXXXXXXX/ folders with a manifest.json, as a run writes to <work_dir>/{CHECKPOINTS}")
