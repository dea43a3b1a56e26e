"""The feature cache every data layer shares: tokenized features in one file beside the data.

A cache file is named by a hash of its key (everything that changes the features: the data file's
hash, the reader's settings, the tokenizer's fingerprint, the lengths) and holds the key itself, so a
file written for other settings is never read as if it were ours. Under torch.distributed, rank 0
builds and writes while the others wait at a barrier and then read its file, so N processes neither
tokenize N times nor race on one file. A cache is never worth failing a run for: an unreadable or
unwritable file is a warning, and the features are built.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Callable, Optional, Protocol, TypeVar

import torch

from nmod.log import get_logger

__all__ = ["CachedFeatures", "feature_cache_path", "load_or_build_features"]

logger = get_logger(__name__)


class CachedFeatures(Protocol):
    """Features that turn into a dict of tensors and back (what ``torch.load(weights_only=True)`` reads)."""

    def to_tensors(self) -> dict: ...

    @classmethod
    def from_tensors(cls, tensors: dict) -> "CachedFeatures": ...


F = TypeVar("F", bound=CachedFeatures)


def feature_cache_path(data_file: str | Path, key: dict) -> Path:
    """``{data_file}.{key["tag"]}-{hash of key}.cache.pt``: one file per set of settings, beside the data."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    path = Path(data_file)
    return path.with_name(f"{path.name}.{key.get('tag', 'features')}-{digest}.cache.pt")


def load_or_build_features(data_file: str | Path, key: dict, build: Callable[[], F], features_type: type[F],
                           use_cache: bool = True) -> tuple[F, Optional[Path]]:
    """Features from the cache written for ``key`` beside ``data_file``, else ``build()`` (and cache them).

    ``key["tag"]`` (say ``"mrpc-dev"``) names the file for a reader. Returns the features and the cache
    path (None when caching is off).
    """
    if not use_cache:
        return build(), None
    path = feature_cache_path(data_file, key)
    rank, world = _rank_and_world()
    features = None
    if rank == 0:
        features = _read(path, key, features_type)
        if features is None:
            features = build()
            _write(path, key, features)
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        features = _read(path, key, features_type)
        if features is None:  # rank 0 could not write (a read-only folder): build here
            features = build()
    return features, path


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _read(path: Path, key: dict, features_type: type[F]) -> Optional[F]:
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("key") != key:
            logger.warning("feature cache %s was written for other settings; rebuilding it", path)
            return None
        return features_type.from_tensors(blob["features"])
    except Exception as e:  # a cache is never worth failing a run for
        logger.warning("feature cache %s is unreadable (%s); rebuilding it", path, e)
        return None


def _write(path: Path, key: dict, features: CachedFeatures) -> None:
    from nmod.backends.pytorch import atomic_torch_save

    try:
        atomic_torch_save({"key": key, "features": features.to_tensors()}, path)
        logger.info("wrote feature cache %s", path)
    except OSError as e:
        logger.warning("could not write the feature cache %s (%s); features will be rebuilt next time", path, e)
