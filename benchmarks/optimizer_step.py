"""AdamW step time on the MiniLM QA model's parameters: torch's three implementations and nmod's names.

    .venv/bin/python benchmarks/optimizer_step.py            # ~30 s on 2 cores

Sizes the choice `nmod.optim.get_optimizer` makes on the CPU. `optimizer="adam_w"` builds
`torch.optim.AdamW` with torch's default implementation (a per-tensor for-loop on the CPU);
`"fused_adam"` picks foreach or fused (printed); HF Trainer's default is `AdamW(fused=True)`. Each
variant steps the same parameters with the same random gradients; steps are interleaved across
variants and the median is reported. The last column checks that each variant's update matches the
first's to float tolerance.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    B.setup(args.threads)
    print(B.machine_info())
    from nmod.optim import get_optimizer

    encoder, head, _ = B.nmod_modules(dropout=None)
    base = torch.nn.ModuleDict({"encoder": encoder, "head": head})
    torch.manual_seed(0)
    grads = [torch.randn_like(p) * 1e-3 for p in base.parameters()]
    variants = {
        'nmod "adam_w"': lambda ps: get_optimizer("adam_w", ps, lr=3e-5, weight_decay=0.01),
        'nmod "fused_adam"': lambda ps: get_optimizer("fused_adam", ps, lr=3e-5, weight_decay=0.01),
        "AdamW(foreach=True)": lambda ps: get_optimizer("adam_w", ps, lr=3e-5, weight_decay=0.01, foreach=True),
        "AdamW(fused=True) (HF Trainer default)": lambda ps: get_optimizer("adam_w", ps, lr=3e-5, weight_decay=0.01,
                                                                           fused=True),
    }
    models, opts = {}, {}
    for name, make in variants.items():
        models[name] = copy.deepcopy(base)
        for prm, g in zip(models[name].parameters(), grads):
            prm.grad = g.clone()
        opts[name] = make(list(models[name].named_parameters()))
        opts[name].step()  # allocates the state
    times = {name: [] for name in variants}
    for step in range(args.steps):
        for name in B.rotate(list(variants), step):
            start = time.perf_counter()
            opts[name].step()
            times[name].append(time.perf_counter() - start)
    ref = list(variants)[0]
    rows = []
    for name in variants:
        diff = max(float((a - b).detach().abs().max()) for a, b in zip(models[name].parameters(),
                                                                          models[ref].parameters()))
        d = opts[name].defaults
        impl = "fused" if d.get("fused") else "foreach" if d.get("foreach") else "for-loop"
        speedup = B.median(times[ref]) / B.median(times[name])
        rows.append([name, impl, f"{B.median(times[name]) * 1e3:.1f}", f"{speedup:.1f}x",
                     f"{diff:.1e}"])
    n = sum(p.numel() for p in base.parameters())
    print(f"\n{n / 1e6:.1f} M parameters, {args.steps} interleaved steps each (load {B.loadavg()})")
    print(B.table(rows, ["optimizer", "torch implementation", "ms/step (median)", "speed-up vs first",
                         "max |w - w_first|"]))


if __name__ == "__main__":
    main()
