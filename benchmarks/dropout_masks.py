"""nmod's CPU dropout masks (16-bit words, `nmod_nlp.modules.dropout`) against torch's (`bernoulli_`), side by side.

    .venv/bin/python benchmarks/dropout_masks.py --data_dir ../shared/data       # about 10 min on 2 cores
    .venv/bin/python benchmarks/dropout_masks.py --kinds conll --rounds 1 --batches 2   # smoke

This CPU's speed moves by up to 20 % from one minute to the next, so the sides take turns: every round
times each side once (the median over `--batches` batches after one warm-up, `roofline.timed`), and
the table gives each side's median over `--rounds` rounds, the rounds themselves, and its speed
against the first side of its group.

* **attention**: one MiniLM layer's attention (12 heads of 32, dropout 0.1), forward and backward,
  one call per sequence over the real lengths of a SQuAD batch, as the packed layout runs it:
  `attention.sdpa` with nmod's mask, `F.scaled_dot_product_attention` with its own dropout (what nmod
  ran before), and without dropout (SDPA's fused kernel; the floor);
* **training steps** on `roofline.py`'s real batches, `roofline.Kind`'s modules and steps: fp32 and
  bf16 autocast (O1), each with nmod's masks and with torch's (`roofline.torch_dropout`), and bf16 O2
  (fp32 master weights, `roofline.o2_train_step`, on its own copy of the modules) with nmod's.
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402
import roofline as R  # noqa: E402

from nmod_nlp.modules.encoders import attention  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    R.add_batch_args(p, kinds=("squad", "conll"), batches=4)
    p.add_argument("--rounds", type=int, default=5, help="the sides take turns this many times")
    return p.parse_args(argv)


def attention_sides(lengths: np.ndarray, dropout_p: float = 0.1) -> dict:
    """One layer's attention over sequences of ``lengths`` tokens, forward and backward."""
    cfg = B.model_config()
    heads = cfg["num_attention_heads"]
    qkv = [[torch.randn(heads, int(n), cfg["hidden_size"] // heads, requires_grad=True) for _ in range(3)]
           for n in lengths]

    def step(attend, _batch):
        torch.stack([attend(q, k, v).sum() for q, k, v in qkv]).sum().backward()

    return {
        "attention, nmod's mask": functools.partial(step, lambda q, k, v: attention.sdpa(q, k, v, dropout_p=dropout_p)),
        "attention, SDPA's dropout": functools.partial(
            step, lambda q, k, v: F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)),
        "attention, no dropout": functools.partial(step, lambda q, k, v: F.scaled_dot_product_attention(q, k, v)),
    }


def training_sides(kind: R.Kind) -> dict:
    """nmod's training step of ``kind``, fp32 and O1 with either mask, and O2 with nmod's."""
    train = R.train_step(kind, *kind.nmod_modules())

    def with_torch_masks(step):
        def run(batch):
            with R.torch_dropout():
                step(batch)
        return run

    o1 = functools.partial(train, bf16=True)
    return {
        "train fp32, nmod's masks": train,
        "train fp32, torch's masks": with_torch_masks(train),
        "train bf16 O1, nmod's masks": o1,
        "train bf16 O1, torch's masks": with_torch_masks(o1),
        "train bf16 O2, nmod's masks": R.o2_train_step(kind, *kind.nmod_modules()),
    }


def in_turns(sides: dict, batches: list, rounds: int) -> dict[str, list[float]]:
    """Milliseconds per batch of each side, a list over rounds, the sides taking turns in each round."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, step in sides.items():
            times[name].append(1000 * R.timed(step, batches))
    return times


def main(argv=None) -> None:
    args = parse_args(argv)
    B.setup(args.threads)
    kinds = R.chosen_kinds(args.kinds)
    print(B.machine_info())
    print(f"{args.rounds} rounds, each side {args.batches} timed batches of {args.batch_size} a round (median)")
    tokenizer = B.get_nmod_tokenizer()
    table = []
    with tempfile.TemporaryDirectory(prefix="nmod-dropout-") as tmp:
        for name in kinds:
            kind = R.Kind(name, Path(args.data_dir), Path(tmp), tokenizer, args.batch_size, args.batches)
            print(f"\n== {name}: mean {np.mean([n.mean() for n in kind.lengths]):.0f} real sub-tokens a row ==",
                  flush=True)
            groups = [training_sides(kind)]
            if name == "squad":
                groups.insert(0, attention_sides(kind.lengths[0]))
            for sides in groups:
                times = in_turns(sides, kind.batches, args.rounds)
                first = float(np.median(next(iter(times.values()))))
                for side, ms in times.items():
                    median = float(np.median(ms))
                    table.append([name, side, f"{median:.0f}", " ".join(f"{t:.0f}" for t in ms), f"{first / median:.2f}x"])
                    print(f"  {side:30s} {median:7.0f} ms  ({' '.join(f'{t:.0f}' for t in ms)})", flush=True)
    print()
    print(B.table(table, ["kind", "side", "ms, median", "ms, each round", "speed vs the group's first"]))
    print(f"load average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
