"""Batching that spends no compute on padding it can avoid: pad-to-longest collation and length buckets.

SQuAD features are mostly far shorter than `max_seq_length`; padding each batch only to its longest
row saves most of that, and grouping rows of similar length into batches saves most of the rest.
Buckets are cut from a shuffled order and the batches shuffled again, so training stays random.
"""
from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np
import torch

__all__ = ["PadCollate", "BucketBatchSampler", "BucketedBatches", "encoder_row"]


def encoder_row(ids: np.ndarray, segment_a_len: int, pad_id: int, pad_to_length: Optional[int] = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One encoder input row from a stored [CLS] a [SEP] (b [SEP]) encoding: ``input_ids``,
    ``token_type_ids`` (1 from the second segment on) and ``attention_mask``, int64, right-padded to
    ``pad_to_length`` when given (else as long as the row; ``PadCollate`` pads the batch)."""
    n = ids.shape[0]
    length = pad_to_length or n
    input_ids = torch.full((length,), pad_id, dtype=torch.long)
    input_ids[:n] = torch.from_numpy(ids.astype(np.int64))
    type_ids = torch.zeros(length, dtype=torch.long)
    type_ids[segment_a_len:n] = 1
    mask = torch.zeros(length, dtype=torch.long)
    mask[:n] = 1
    return input_ids, type_ids, mask


class PadCollate:
    """Collates tuples whose items are 0-d tensors (stacked) or 1-d tensors (right-padded).

    `pad_values[i]` fills field i; `pad_to_multiple_of` rounds the padded length up (8 suits tensor
    cores); `fixed_length` pads every batch to one length instead (the padded baseline). A class, not
    a closure, so DataLoader workers can pickle it.
    """

    def __init__(self, pad_values: Sequence[int], pad_to_multiple_of: int = 1, fixed_length: Optional[int] = None):
        self.pad_values = tuple(pad_values)
        self.pad_to_multiple_of = max(1, int(pad_to_multiple_of))
        self.fixed_length = fixed_length

    def __call__(self, batch: Sequence[tuple]) -> tuple:
        if not batch:
            raise ValueError("cannot collate an empty batch")
        out = []
        for i, column in enumerate(zip(*batch)):
            if column[0].dim() == 0:
                out.append(torch.stack(column))
                continue
            longest = max(int(x.shape[0]) for x in column)
            length = self.fixed_length or -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
            if length < longest:
                raise ValueError(f"a row of {longest} tokens does not fit fixed_length={self.fixed_length}")
            padded = torch.full((len(column), length), self.pad_values[i], dtype=column[0].dtype)
            for row, x in enumerate(column):
                padded[row, :x.shape[0]] = x
            out.append(padded)
        return tuple(out)


class BucketBatchSampler(torch.utils.data.Sampler):
    """Index batches for one rank of `world_size`, optionally grouped by length.

    Every rank computes the same global order from (seed, epoch), cuts it into global batches of
    `batch_size * world_size` and takes every `world_size`-th row of each, so all ranks run the same
    number of steps and, with buckets, see rows of similar length in the same step. With more than one
    rank the order is padded with repeated rows to a multiple of `world_size` (as torch's
    DistributedSampler does) unless `drop_last`; post-processing counts a repeated feature once.

    `bucket_size_multiplier` batches' worth of rows are sorted by length at a time: larger buckets pad
    less, smaller ones mix lengths more.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True, bucket_by_length: bool = True,
                 seed: int = 0, epoch: int = 0, rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 bucket_size_multiplier: int = 100):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size} processes")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.shuffle, self.bucket_by_length = batch_size, shuffle, bucket_by_length
        self.seed, self.epoch, self.rank, self.world_size = seed, epoch, rank, world_size
        self.drop_last, self.bucket_size_multiplier = drop_last, max(1, bucket_size_multiplier)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _global_batches(self) -> list[np.ndarray]:
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        step = self.batch_size * self.world_size
        if self.drop_last:
            order = order[:n - n % step]
        elif self.world_size > 1 and n % self.world_size:
            order = np.resize(order, n + (-n) % self.world_size)  # np.resize repeats from the start
        if self.bucket_by_length:
            chunk = step * self.bucket_size_multiplier
            for c in range(0, len(order), chunk):
                part = order[c:c + chunk]
                order[c:c + chunk] = part[np.argsort(-self.lengths[part], kind="stable")]
        batches = [order[i:i + step] for i in range(0, len(order), step)]
        if self.shuffle and self.bucket_by_length:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self._global_batches():
            yield batch[self.rank::self.world_size].tolist()

    def __len__(self) -> int:
        n, step = len(self.lengths), self.batch_size * self.world_size
        if self.drop_last:
            return n // step
        if self.world_size > 1:
            n += (-n) % self.world_size
        return -(-n // step)


class BucketedBatches:
    """A data layer's ``batch_sampler`` for ``bucket_by_length``: the layer sets ``dataset`` (with
    ``lengths``), ``batch_size``, ``shuffle``, ``bucket_by_length`` and ``drop_last``."""

    def batch_sampler(self, epoch: int = 0, rank: int = 0, world_size: int = 1,
                      seed: int = 0) -> Optional[BucketBatchSampler]:
        """Length-bucketed batches for this rank, or None (the executor's own sampler) without buckets."""
        if not self.bucket_by_length:
            return None
        return BucketBatchSampler(self.dataset.lengths, self.batch_size, shuffle=self.shuffle, bucket_by_length=True,
                                  seed=seed, epoch=epoch, rank=rank, world_size=world_size, drop_last=self.drop_last)
