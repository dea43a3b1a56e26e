"""The executor's cost per training step against a hand-written PyTorch loop on the same model and batches.

    .venv/bin/python benchmarks/executor_overhead.py                    # ~3 min on 2 cores
    .venv/bin/python benchmarks/executor_overhead.py --reps 20 --steps 8

Both sides train the QA graph of the recipe (MiniLM BERT -> TokenClassifier -> SpanningLoss) on the
same batches: the SQuAD data layer's dataset, collate function and batch order (unshuffled, so the
hand loop can take the very same index lists). The executor gets `optimizer="adam_w"` by name; the
hand loop builds the same optimizer with `nmod.optim.get_optimizer("adam_w", ...)`, calls each
module's plain `torch.nn.Module.__call__` (no graph, no port checks) and does zero_grad, forward,
backward, step. Both build their optimizer per repetition; nothing else differs.

Repetitions alternate A B A B ... (which side goes first alternates too) and the medians of the
per-step times and of the per-pair ratios are reported, so a noisy shared CPU hits both sides alike.
Two models: MiniLM (the real ratio) and a tiny BERT (2 layers, hidden 32), whose short steps expose
the executor's fixed cost per step in microseconds; that cost divided by a MiniLM step is a second,
less noisy estimate of the MiniLM overhead.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num_questions", type=int, default=None,
                   help="SQuAD-length questions to generate (default: enough for the longest run)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--steps", type=int, default=4, help="training steps per repetition (MiniLM)")
    p.add_argument("--reps", type=int, default=8, help="repetitions per side (MiniLM)")
    p.add_argument("--tiny_steps", type=int, default=40, help="training steps per repetition (tiny BERT)")
    p.add_argument("--tiny_reps", type=int, default=15)
    p.add_argument("--models", default="minilm,tiny", help="comma-separated: minilm, tiny")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", action="store_true",
                   help="profile the executor's Python per step (cProfile, tiny model)")
    return p.parse_args(argv)


class StepClock:
    """nmod callback: time from on_train_start to the last step's end."""

    def __init__(self):
        from nmod.callbacks import Callback

        clock = self
        self.start = self.end = None

        class _CB(Callback):
            def on_train_start(self, state):
                clock.start = time.perf_counter()

            def on_step_end(self, state):
                clock.end = time.perf_counter()

        self.callback = _CB()


def build(model: str, data_file: str, tokenizer, args):
    import nmod
    from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer
    from nmod_nlp.modules.encoders import BERT
    from nmod_nlp.modules.heads import TokenClassifier
    from nmod_nlp.modules.losses import SpanningLoss

    nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=args.seed, progress_bar=False)
    logging.getLogger("nmod").setLevel(logging.WARNING)
    if model == "minilm":
        encoder = BERT(pretrained_dir=B.MODEL_DIR)
    else:
        encoder = BERT(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                       intermediate_size=64)
    head = TokenClassifier(encoder.hidden_size, num_classes=2, num_layers=1, log_softmax=False)
    loss_module = SpanningLoss()
    data_layer = BertQuestionAnsweringDataLayer(data_file, tokenizer=tokenizer, mode="train",
                                                batch_size=args.batch_size, use_cache=False, shuffle=False)
    batch = data_layer()
    hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
    out = loss_module(logits=head(hidden_states=hidden), start_positions=batch.start_positions,
                      end_positions=batch.end_positions, attention_mask=batch.attention_mask)
    return nf, encoder, head, loss_module, data_layer, out.loss


def executor_run(nf, loss, steps: int, lr: float) -> float:
    clock = StepClock()
    nf.train(tensors_to_optimize=[loss], optimizer="adam_w", optimization_params={"max_steps": steps, "lr": lr},
             callbacks=[clock.callback])
    return (clock.end - clock.start) / steps


def hand_run(encoder, head, loss_module, data_layer, steps: int, lr: float) -> float:
    """What a PyTorch user writes: same optimizer, same dataset/collate/batches, plain module calls."""
    from nmod.optim import get_optimizer

    call = torch.nn.Module.__call__
    named = [*encoder.named_parameters(prefix="encoder"), *head.named_parameters(prefix="head")]
    opt = get_optimizer("adam_w", named, lr=lr)
    n, bs = len(data_layer), data_layer.batch_size
    batches = [list(range(i, min(n, i + bs))) for i in range(0, n, bs)][:steps]
    encoder.train(), head.train(), loss_module.train()
    start = time.perf_counter()
    loader = torch.utils.data.DataLoader(data_layer.dataset, batch_sampler=batches, num_workers=0,
                                         collate_fn=data_layer.collate_fn)
    for input_ids, type_ids, mask, _ids, starts, ends in loader:
        opt.zero_grad(set_to_none=True)
        hidden = call(encoder, input_ids=input_ids, token_type_ids=type_ids, attention_mask=mask)
        loss = call(loss_module, logits=call(head, hidden_states=hidden), start_positions=starts,
                    end_positions=ends, attention_mask=mask)[0]
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) / len(batches)


def measure(model: str, data_file: str, tokenizer, args) -> dict:
    nf, encoder, head, loss_module, data_layer, loss = build(model, data_file, tokenizer, args)
    steps = args.steps if model == "minilm" else args.tiny_steps
    reps = args.reps if model == "minilm" else args.tiny_reps
    available = -(-len(data_layer) // data_layer.batch_size)
    if steps > available:
        raise SystemExit(f"--steps {steps} needs {steps * args.batch_size} features; the data has {len(data_layer)} "
                         f"(raise --num_questions)")
    executor_run(nf, loss, 1, args.lr)  # warm up both
    hand_run(encoder, head, loss_module, data_layer, 1, args.lr)
    ex, hand, pair, diff = [], [], [], []
    for rep in range(reps):
        order = ("executor", "hand") if rep % 2 == 0 else ("hand", "executor")
        t = {}
        for side in order:
            if side == "executor":
                t[side] = executor_run(nf, loss, steps, args.lr)
            else:
                t[side] = hand_run(encoder, head, loss_module, data_layer, steps, args.lr)
        ex.append(t["executor"])
        hand.append(t["hand"])
        pair.append(t["executor"] / t["hand"])
        diff.append(t["executor"] - t["hand"])
    result = {"executor": B.median(ex), "hand": B.median(hand), "pair_ratio": B.median(pair),
              "pair_min": min(pair), "pair_max": max(pair), "steps": steps, "reps": reps}
    result["abs_overhead_us"] = B.median(diff) * 1e6  # median of per-pair differences: robust to load bursts
    return result


def profile_executor(data_file: str, tokenizer, args) -> None:
    import cProfile
    import pstats

    nf, *_rest, loss = build("tiny", data_file, tokenizer, args)
    executor_run(nf, loss, 1, args.lr)
    prof = cProfile.Profile()
    prof.enable()
    executor_run(nf, loss, args.tiny_steps, args.lr)
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(30)


def main(argv=None) -> None:
    args = parse_args(argv)
    B.setup(args.threads)
    print(B.machine_info())
    tokenizer = B.get_nmod_tokenizer()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    with B.temp_dir() as tmp:
        longest = max(args.steps if "minilm" in models else 1, args.tiny_steps if "tiny" in models else 1)
        needed = args.batch_size * longest
        data_file = B.make_data_file("squad-length", args.num_questions or needed, args.seed, tmp, tokenizer)
        if args.profile:
            profile_executor(data_file, tokenizer, args)
            return
        results = {}
        for model in models:
            results[model] = r = measure(model, data_file, tokenizer, args)
            print(f"\n{model}: {r['reps']} interleaved repetitions x {r['steps']} steps, batch {args.batch_size} "
                  f"(load {B.loadavg()})")
            print(B.table([["executor", f"{r['executor'] * 1e3:.2f}"], ["hand-written loop", f"{r['hand'] * 1e3:.2f}"]],
                          ["side", "ms/step (median)"]))
            print(f"overhead: median of per-pair ratios {100 * (r['pair_ratio'] - 1):+.2f} % "
                  f"(pairs from {100 * (r['pair_min'] - 1):+.1f} % to {100 * (r['pair_max'] - 1):+.1f} %); "
                  f"ratio of medians {100 * (r['executor'] / r['hand'] - 1):+.2f} %; "
                  f"median per-pair difference {r['abs_overhead_us']:+.0f} us/step")
    print("\nsummary:")
    if "minilm" in results:
        r = results["minilm"]
        ok = r["pair_ratio"] - 1 < 0.02
        print(f"  MiniLM executor overhead: {100 * (r['pair_ratio'] - 1):+.2f} % per step (target < 2 %: "
              f"{'met' if ok else 'NOT met'})")
        if "tiny" in results:
            est = results["tiny"]["abs_overhead_us"] / (r["hand"] * 1e6)
            print(f"  fixed cost per step from the tiny model: {results['tiny']['abs_overhead_us']:+.0f} us = "
                  f"{100 * est:+.3f} % of a MiniLM step")
    elif "tiny" in results:
        r = results["tiny"]
        print(f"  tiny-model executor overhead: {100 * (r['pair_ratio'] - 1):+.2f} % "
              f"({r['abs_overhead_us']:+.0f} us/step)")
    print(f"load average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
