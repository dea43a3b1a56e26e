"""nmod BERT's padded vs packed (unpadded) path on fixed batches: where `attention_impl="auto"` should switch.

    .venv/bin/python benchmarks/attention_paths.py           # ~2 min on 2 cores
    .venv/bin/python benchmarks/attention_paths.py --shapes 8x256,16x384 --paddings 0,0.02,0.05

One training step (forward + backward, dropout 0.1 as in fine-tuning) of the MiniLM encoder on a
batch of random token ids, `attention_impl` forced to "padded" and to "unpadded", alternating, median
of `--reps`. Padding: half of the rows are cut short so that the given fraction of all positions is
padding. Also printed: minor page faults per step (fresh pages the kernel zeroes: on Linux, glibc
hands allocations of 32 MiB and more back to the OS when freed, so big attention tensors cost page
faults on every step). `UNPAD_MIN_PADDING_FRACTION` in `modules/encoders/attention.py` is the
padding fraction from which "auto" packs.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shapes", default="8x256,16x256,16x384", help="batch x length, comma-separated")
    p.add_argument("--paddings", default="0,0.05,0.1", help="fractions of positions that are padding")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    B.setup(args.threads)
    print(B.machine_info())
    from nmod_nlp.modules.encoders import BERT
    from nmod_nlp.modules.encoders.attention import UNPAD_MIN_PADDING_FRACTION

    encoder = BERT(pretrained_dir=B.MODEL_DIR)
    encoder.train()
    call = torch.nn.Module.__call__

    def step(impl: str, ids, mask) -> tuple[float, int]:
        encoder.attention_impl = impl
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        start = time.perf_counter()
        out = call(encoder, input_ids=ids, token_type_ids=torch.zeros_like(ids), attention_mask=mask)
        out.sum().backward()
        encoder.zero_grad(set_to_none=True)
        return time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults

    rows = []
    for shape in args.shapes.split(","):
        batch, length = (int(x) for x in shape.lower().split("x"))
        for padding in (float(x) for x in args.paddings.split(",")):
            torch.manual_seed(0)
            ids = torch.randint(1000, 2000, (batch, length))
            mask = torch.ones_like(ids)
            cut = int(round(2 * padding * length))  # half the rows lose `cut` tokens
            if cut:
                mask[: batch // 2, length - cut:] = 0
            real_padding = 1 - float(mask.float().mean())
            for impl in ("padded", "unpadded"):
                step(impl, ids, mask)  # warm up
            times = {"padded": [], "unpadded": []}
            faults = {"padded": [], "unpadded": []}
            for rep in range(args.reps):
                for impl in (("padded", "unpadded") if rep % 2 == 0 else ("unpadded", "padded")):
                    t, f = step(impl, ids, mask)
                    times[impl].append(t)
                    faults[impl].append(f)
            tp, tu = B.median(times["padded"]), B.median(times["unpadded"])
            auto = "unpadded" if real_padding >= UNPAD_MIN_PADDING_FRACTION else "padded"
            rows.append([f"{batch}x{length}", f"{100 * real_padding:.0f} %", f"{tp * 1e3:.0f}",
                         f"{B.median(faults['padded']) / 1e3:.0f}k", f"{tu * 1e3:.0f}",
                         f"{B.median(faults['unpadded']) / 1e3:.0f}k", f"{tp / tu:.2f}x", auto])
            print(f"  {rows[-1]} (load {B.loadavg()})", flush=True)
    print(f"\nUNPAD_MIN_PADDING_FRACTION = {UNPAD_MIN_PADDING_FRACTION}")
    print(B.table(rows, ["batch", "padding", "padded ms", "faults", "unpadded ms", "faults", "unpadded speed-up",
                         "auto picks"]))


if __name__ == "__main__":
    main()
