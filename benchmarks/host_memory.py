"""Large CPU tensors from the heap (`nmod.backends.pytorch.host_memory`) against glibc's default, in turns.

    .venv/bin/python benchmarks/host_memory.py --data_dir ../shared/data                 # about 10 min on 2 cores
    .venv/bin/python benchmarks/host_memory.py --kinds conll --rounds 1 --batches 2      # smoke

glibc serves a `malloc` above its mmap threshold (which it raises by itself to at most 32 MiB) with a
fresh `mmap`, so a tensor that size or larger starts every step as untouched pages the kernel must fault
in and zero. `NeuralModuleFactory` on a CPU (and the predictors) call `host_memory.keep_large_blocks()`,
which serves blocks up to 1 GiB from the heap instead. This script times the same steps both ways:

* `glibc default`: a process started with `NMOD_KEEP_CPU_MEMORY=0`, which never calls `mallopt`;
* `heap up to 1 GiB`: a process that called `keep_large_blocks()`, as the factory does.

Each round starts one process of each (the two take turns; the setting cannot be switched back inside
one process, since a heap grown under the one setting keeps serving large blocks under the other). A
process times, on `roofline.py`'s real batches and modules, adding two tensors of a SQuAD batch's FFN
activation size (6,243 x 1,536 fp32, 38 MiB), nmod's training step in fp32 and in bf16 autocast (O1),
and its fp32 inference step, and reports its peak resident memory (the heap keeps what it served).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402
import roofline as R  # noqa: E402

from nmod.backends.pytorch import host_memory  # noqa: E402

SETTINGS = {"glibc default": "0", "heap up to 1 GiB": "1"}  # side -> NMOD_KEEP_CPU_MEMORY


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    R.add_batch_args(p, kinds=("squad", "conll"), batches=4)
    p.add_argument("--rounds", type=int, default=3, help="each round starts one process of each setting")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)  # time this process's setting
    return p.parse_args(argv)


def steps(kind: R.Kind) -> dict:
    encoder, head, loss_fn = kind.nmod_modules()
    train = R.train_step(kind, encoder, head, loss_fn)

    def infer(batch):
        encoder.eval(), head.eval()
        with torch.inference_mode():
            kind.nmod_step(encoder, head, loss_fn, batch)

    return {"train fp32": train, "train bf16 O1": lambda b: train(b, bf16=True), "infer fp32": infer}


def child(args) -> None:
    """Time every step under this process's malloc setting; one JSON line {step: ms} and the peak RSS."""
    B.setup(args.threads)  # keep_large_blocks(), unless NMOD_KEEP_CPU_MEMORY=0
    x = torch.randn(6243, 1536)
    result = {"add, 38 MiB": 1000 * R.timed(lambda _b: x + x, [None] * 21)}
    with tempfile.TemporaryDirectory(prefix="nmod-host-memory-") as tmp:
        for name in R.chosen_kinds(args.kinds):
            kind = R.Kind(name, Path(args.data_dir), Path(tmp), B.get_nmod_tokenizer(), args.batch_size, args.batches)
            for step_name, step in steps(kind).items():
                result[f"{name} {step_name}"] = 1000 * R.timed(step, kind.batches)
    result["peak resident MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"malloc": B.malloc_setting(), "ms": result}))


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.child:
        return child(args)
    B.setup(args.threads)
    print(B.machine_info().split("; malloc:")[0])
    print(f"{args.rounds} rounds, each setting one process a round; each step {args.batches} timed batches of "
          f"{args.batch_size} (median)", flush=True)
    if host_memory.mmapped_blocks() is None:
        raise SystemExit("this benchmark needs glibc's mallopt (Linux with glibc)")
    forwarded = ["--data_dir", args.data_dir, "--kinds", args.kinds, "--batch_size", str(args.batch_size),
                 "--batches", str(args.batches), "--threads", str(args.threads)]
    runs: dict[str, list[dict]] = {side: [] for side in SETTINGS}
    for r in range(args.rounds):
        for side, env in SETTINGS.items():
            out = subprocess.run([sys.executable, __file__, "--child", *forwarded], capture_output=True, text=True,
                                 env={**os.environ, host_memory.ENV: env}, check=True).stdout
            got = json.loads(out.strip().splitlines()[-1])
            runs[side].append(got["ms"])
            print(f"  round {r + 1}, {got['malloc']}: "
                  + ", ".join(f"{k} {v:.0f}" for k, v in got["ms"].items()), flush=True)
    table = []
    for step in runs["glibc default"][0]:
        base = float(np.median([run[step] for run in runs["glibc default"]]))
        for side, side_runs in runs.items():
            values = [run[step] for run in side_runs]
            median = float(np.median(values))
            ratio = f"{base / median:.2f}x" if step != "peak resident MiB" else f"{median / base:.2f}x memory"
            table.append([step, side, f"{median:.1f}", " ".join(f"{v:.1f}" for v in values), ratio])
    print()
    print(B.table(table, ["step", "malloc", "ms, median", "each round", "speed vs glibc default"]))
    print(f"load average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
