"""Saving and loading tensors safely: atomic writes, and weights_only loads by default."""
from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch

from nmod.core.config import atomic_write
from nmod.core.errors import CheckpointError

__all__ = ["atomic_torch_save", "load_weights", "save_hashed", "file_digest", "FileDigest", "HashingWriter",
           "UnsafeCheckpointError"]


class UnsafeCheckpointError(CheckpointError, RuntimeError):
    """The file needs arbitrary unpickling, which we refuse unless the user opts in."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """`torch.save` that never leaves a half-written file behind (see `atomic_write`)."""
    atomic_write(path, lambda f: torch.save(obj, f), binary=True)


@dataclass(frozen=True)
class FileDigest:
    """A file's size in bytes and the hex SHA-256 of its contents, as a checkpoint manifest records them."""

    size: int
    sha256: str

    def to_json(self) -> dict:
        return {"size": self.size, "sha256": self.sha256}


class HashingWriter:
    """A write-only file object that hashes and counts the bytes on their way to `file`.

    `torch.save` writes its zip archive sequentially through `write` (and calls `flush`); it never
    seeks a file object it is given. No `seek`/`tell` are offered, so a torch that needed them would
    fail loudly here rather than record the hash of bytes that are not the file's.
    """

    def __init__(self, file):
        self._file = file
        self._sha256 = hashlib.sha256()
        self.size = 0
        self.error: Optional[OSError] = None  # the first failed write (a full disk), raised again on every later one

    def write(self, data) -> int:
        if self.error is not None:
            raise self.error
        view = memoryview(data).cast("B")
        try:
            written = self._file.write(view)
        except OSError as e:
            self.error = e
            raise
        written = view.nbytes if written is None else written
        self._sha256.update(view[:written])
        self.size += written
        return written

    def flush(self) -> None:
        self._file.flush()

    def digest(self) -> FileDigest:
        return FileDigest(self.size, self._sha256.hexdigest())


def save_hashed(obj: Any, path: str | os.PathLike) -> FileDigest:
    """`torch.save(obj, path)`, fsynced, hashing the bytes as they are written (no second read)."""
    with open(path, "wb") as f:
        writer = HashingWriter(f)
        try:
            torch.save(obj, writer)
        except Exception:
            # torch.save closes its archive after a failed write and reports that instead, as a RuntimeError
            # about positions ("unexpected pos"): raise the OSError (ENOSPC, EIO, ...) that caused it.
            if writer.error is not None:
                raise writer.error from None
            raise
        f.flush()
        os.fsync(f.fileno())
    return writer.digest()


def file_digest(path: str | os.PathLike, chunk_bytes: int = 1 << 24) -> FileDigest:
    """Read `path` once and return its size and SHA-256."""
    sha256, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            sha256.update(chunk)
            size += len(chunk)
    return FileDigest(size, sha256.hexdigest())


def load_weights(path: str | os.PathLike, allow_unsafe: bool = False, map_location: str = "cpu") -> Any:
    """`torch.load(weights_only=True)`; a file that needs more is refused with how to opt in."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location=map_location, weights_only=not allow_unsafe)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(
            f"{path} contains objects that torch.load(weights_only=True) refuses to unpickle ({e}). "
            "Only load it if you trust its source: pass allow_unsafe=True to load_weights "
            "(for encoders: allow_unsafe_checkpoint=True, or --allow_unsafe_checkpoint in the recipes)."
        ) from None
    except RuntimeError as e:
        raise CheckpointError(f"Cannot read checkpoint {path}: {e}") from None
