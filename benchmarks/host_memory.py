"""Large CPU tensors from the heap (`nmod.backends.pytorch.host_memory`) against glibc's default, in turns.

    .venv/bin/python benchmarks/host_memory.py --data_dir ../shared/data                 # about 8 min on 2 cores
    .venv/bin/python benchmarks/host_memory.py --kinds conll --rounds 1 --batches 2      # smoke

glibc serves a `malloc` above its mmap threshold (which it raises by itself to at most 32 MiB) with a
fresh `mmap`, so a tensor that size or larger starts every step as untouched pages the kernel must fault
in and zero. `NeuralModuleFactory` on a CPU (and the predictors) call `host_memory.keep_large_blocks()`,
which serves blocks up to 1 GiB from the heap instead. This script times the same steps both ways in
one process, the two settings taking turns (`mallopt` changes them at run time):

* `glibc default`: the threshold fixed at 32 MiB, the ceiling glibc's own threshold reaches after
  warm-up (so this is the steady state of a process that never called `mallopt`);
* `heap up to 1 GiB`: what `keep_large_blocks()` sets.

Steps, on `roofline.py`'s real batches and modules: nmod's training step in fp32 and in bf16 autocast
(O1), and its fp32 inference step. A first microbenchmark adds two tensors of a SQuAD batch's FFN
activation size (6,243 x 1,536 fp32, 38 MiB). Each row prints the process's resident memory after
its side's last batch: the heap keeps what it served, so that number rises with the heap setting.
"""
from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402
import roofline as R  # noqa: E402
from dropout_masks import in_turns  # noqa: E402

from nmod.backends.pytorch import host_memory  # noqa: E402

SETTINGS = {"glibc default": host_memory.GLIBC_MMAP_CEILING, "heap up to 1 GiB": host_memory.HEAP_THRESHOLD}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    R.add_batch_args(p, kinds=("squad", "conll"), batches=4)
    p.add_argument("--rounds", type=int, default=3, help="the two settings take turns this many times")
    return p.parse_args(argv)


def resident_mib() -> float:
    """This process's resident memory now (``/proc/self/statm``), MiB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def under(threshold: int, step):
    """``step`` with malloc's mmap threshold set to ``threshold`` for its duration."""
    def run(batch):
        if not host_memory.set_mmap_threshold(threshold):
            raise SystemExit("this benchmark needs glibc's mallopt (Linux with glibc)")
        step(batch)
    return run


def steps(kind: R.Kind) -> dict:
    encoder, head, loss_fn = kind.nmod_modules()
    train = R.train_step(kind, encoder, head, loss_fn)

    def infer(batch):
        encoder.eval(), head.eval()
        with torch.inference_mode():
            kind.nmod_step(encoder, head, loss_fn, batch)

    return {"train fp32": train, "train bf16 O1": functools.partial(train, bf16=True), "infer fp32": infer}


def main(argv=None) -> None:
    args = parse_args(argv)
    B.setup(args.threads)
    print(B.machine_info())
    print(f"{args.rounds} rounds, each side {args.batches} timed batches of {args.batch_size} a round (median)")
    table = []
    x = torch.randn(6243, 1536)
    add = {name: under(t, lambda _b: x + x) for name, t in SETTINGS.items()}
    groups = [("add, 38 MiB", add, [None] * 21)]
    tokenizer = B.get_nmod_tokenizer()
    with tempfile.TemporaryDirectory(prefix="nmod-host-memory-") as tmp:
        for name in R.chosen_kinds(args.kinds):
            kind = R.Kind(name, Path(args.data_dir), Path(tmp), tokenizer, args.batch_size, args.batches)
            print(f"== {name}: mean {np.mean([n.mean() for n in kind.lengths]):.0f} real sub-tokens a row", flush=True)
            for step_name, step in steps(kind).items():
                sides = {setting: under(t, step) for setting, t in SETTINGS.items()}
                groups.append((f"{name} {step_name}", sides, kind.batches))
        for label, sides, batches in groups:
            rss = {}
            times = {s: [] for s in sides}
            for _ in range(args.rounds):
                for setting, step in sides.items():
                    times[setting] += in_turns({setting: step}, batches, 1)[setting]
                    rss[setting] = resident_mib()
            base = float(np.median(times["glibc default"]))
            for setting, ms in times.items():
                median = float(np.median(ms))
                row = [label, setting, f"{median:.1f}", " ".join(f"{t:.1f}" for t in ms), f"{base / median:.2f}x",
                       f"{rss[setting]:.0f}"]
                table.append(row)
                print("  " + "  ".join(row), flush=True)
    host_memory.set_mmap_threshold(host_memory.GLIBC_MMAP_CEILING)
    print()
    print(B.table(table, ["step", "malloc", "ms, median", "ms, each round", "speed vs glibc default",
                          "resident MiB after"]))
    print(f"load average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
