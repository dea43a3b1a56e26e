"""Evaluation (inference) throughput: nmod's `infer` on the QA graph vs `transformers`' BertForQuestionAnswering.

    .venv/bin/python benchmarks/inference.py                 # ~3 min on 2 cores
    .venv/bin/python benchmarks/inference.py --data squad-length --num_questions 512 --reps 5

Same MiniLM weights and head on both sides, the same eval features (nmod's, `mode="eval"`) in
dataset order, batch `--batch_size`, no autograd, eval mode. Sides:

* `hf_padded`: every feature padded to 384, as run_qa.py's `prepare_validation_features` does;
* `hf_dynamic`: padded to the longest feature of each batch;
* `nmod`: `nf.infer([start_logits, end_logits])` on the recipe's eval graph (data layer with dynamic
  padding -> BERT attention_impl="auto" -> TokenClassifier -> SpanningLoss with attention_mask), the
  whole call timed;
* `nmod_sorted`: the same nmod modules called directly on length-sorted batches: not what the
  executor does today, printed to size what sorting eval batches by length would add;
* the predictors' deployment paths (`nmod_nlp.inference.runtime.inference_model`) on copies of the
  same modules, called directly on the dataset-order batches:
  `nmod_int8` (`precision="int8"`: torch's dynamic int8 quantization of the Linear layers),
  `nmod_ort` (`runtime="onnxruntime"`: encoder and head exported as one ONNX graph, run by ONNX Runtime)
  and `nmod_ort_int8` (both: the graph's MatMuls in int8, one activation scale per token).
  Each one's largest start/end logit difference from eager fp32 is printed (this head is untrained,
  so the change in EM/F1 on real data is not measured here);
* `nmod_int8_per_tensor` (only when named in `--sides`): torch's int8 with one weight scale per
  tensor, what `precision="int8"` did before it scaled each output channel: the speed of that change;
* `nmod_ort_int8_per_batch` (only when named): ONNX Runtime int8 with one activation scale per batch
  (`quantize_int8(activations="tensor")`, ONNX Runtime's `quantize_dynamic`), what `nmod_ort_int8` ran
  before it scaled each token.

`--batch_size 1` gives the latency of one request (`ms per batch`), `--batch_size 32` the throughput of
a serving batch.

The start/end logits of nmod and HF are compared at real tokens (they must agree to float tolerance)
before anything is timed. Repetitions are interleaved across sides; medians reported.
"""
from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402

from nmod_nlp.inference.runtime import quantize_int8  # noqa: E402

DEPLOYED = {f"nmod_{path}": path for path in B.SERVING_PATHS}  # side -> the predictors' serving path
SIDES = ("hf_padded", "hf_dynamic", "nmod", "nmod_sorted", *DEPLOYED)
EXTRA_SIDES = ("nmod_int8_per_tensor", "nmod_ort_int8_per_batch")  # run only when asked for


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="both", choices=["both", "squad-length", "samples"])
    p.add_argument("--num_questions", type=int, default=96)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--sides", default=",".join(SIDES))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def build_nmod(data_file: str, tokenizer, batch_size: int, seed: int):
    import nmod
    from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer

    nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=seed, progress_bar=False)
    logging.getLogger("nmod").setLevel(logging.WARNING)
    encoder, head, loss_module = B.nmod_modules(dropout=None, attention_impl="auto")
    data_layer = BertQuestionAnsweringDataLayer(data_file, tokenizer=tokenizer, mode="eval", batch_size=batch_size,
                                                use_cache=False)
    batch = data_layer()
    hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
    out = loss_module(logits=head(hidden_states=hidden), start_positions=batch.start_positions,
                      end_positions=batch.end_positions, attention_mask=batch.attention_mask)
    return nf, encoder, head, data_layer, out


def loader(dataset, batches, fixed_length=None):
    from nmod_nlp.data.batching import PadCollate

    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=0,
                                       collate_fn=PadCollate((0, 0, 0, 0, 0, 0), fixed_length=fixed_length))


@torch.no_grad()
def hf_eval(model, dataset, batches, fixed_length=None) -> list:
    """Trainer's prediction step without its cross-batch gathering: forward without labels, keep logits."""
    model.eval()
    out = []
    for input_ids, type_ids, mask, *_ in loader(dataset, batches, fixed_length):
        o = model(input_ids=input_ids, token_type_ids=type_ids, attention_mask=mask)
        out.append((o.start_logits, o.end_logits))
    return out


@torch.no_grad()
def nmod_sorted_eval(encoder, head, dataset, batches) -> list:
    call = torch.nn.Module.__call__
    encoder.eval(), head.eval()
    return [call(head, hidden_states=call(encoder, input_ids=input_ids, token_type_ids=type_ids, attention_mask=mask))
            for input_ids, type_ids, mask, *_ in loader(dataset, batches)]


@torch.no_grad()
def deployed_eval(model, dataset, batches) -> list:
    return [model(input_ids, type_ids, mask)[0] for input_ids, type_ids, mask, *_ in loader(dataset, batches)]


def check_equal(nf, out, hf_model, dataset, batches) -> float:
    """Largest |nmod - HF| start/end logit at real tokens, over all eval features."""
    starts, ends = nf.infer([out.start_logits, out.end_logits])
    hf = hf_eval(hf_model, dataset, batches)
    worst = 0.0
    for s, e, (hs, he), b in zip(starts, ends, hf, batches):
        mask = torch.stack([torch.arange(s.shape[1]) < int(dataset.lengths[i]) for i in b])
        worst = max(worst, float((s - hs).abs()[mask].max()), float((e - he).abs()[mask].max()))
    return worst


def run(kind: str, data_file: str, tokenizer, args, names) -> dict:
    nf, encoder, head, data_layer, out = build_nmod(data_file, tokenizer, args.batch_size, args.seed)
    dataset = data_layer.dataset
    n = len(dataset)
    batches = [list(range(i, min(n, i + args.batch_size))) for i in range(0, n, args.batch_size)]
    order = np.argsort(-dataset.lengths, kind="stable")
    sorted_batches = [order[i:i + args.batch_size].tolist() for i in range(0, n, args.batch_size)]
    hf_model = B.hf_qa_model(None, head=head)
    diff = check_equal(nf, out, hf_model, dataset, batches)
    models = {side: B.serving_copy(encoder, head, DEPLOYED[side]) for side in names if side in DEPLOYED}
    if "nmod_int8_per_tensor" in names:
        models["nmod_int8_per_tensor"] = B.torch_int8_copy(encoder, head, per_channel=False)
    if "nmod_ort_int8_per_batch" in names:
        models["nmod_ort_int8_per_batch"] = B.ort_int8_copy(
            encoder, head, functools.partial(quantize_int8, activations="tensor"))
    fp32 = nmod_sorted_eval(encoder, head, dataset, batches)
    print(f"\n==== {kind}: {B.length_summary(dataset.lengths)}; batch {args.batch_size} ====")
    print(f"start/end logits at real tokens, nmod vs HF: max |diff| = {diff:.2e} "
          f"({'agree' if diff < 1e-3 else 'DIFFER'})")
    for side, model in models.items():
        worst = max(float((a - b).abs().max()) for a, b in zip(fp32, deployed_eval(model, dataset, batches)))
        print(f"{side} vs eager fp32 nmod: max |logit diff| = {worst:.2e} (the padding positions included)")

    def one(name):
        start = time.perf_counter()
        if name == "hf_padded":
            hf_eval(hf_model, dataset, batches, B.MAX_SEQ_LENGTH)
        elif name == "hf_dynamic":
            hf_eval(hf_model, dataset, batches)
        elif name == "nmod":
            nf.infer([out.start_logits, out.end_logits])
        elif name == "nmod_sorted":
            nmod_sorted_eval(encoder, head, dataset, sorted_batches)
        else:
            deployed_eval(models[name], dataset, batches)
        return n / (time.perf_counter() - start)

    for name in names:  # warm up
        one(name)
    per = {name: [] for name in names}
    for rep in range(args.reps):
        for name in B.rotate(names, rep):
            per[name].append(one(name))
        print(f"  rep {rep + 1}: " + ", ".join(f"{k} {v[-1]:.1f}" for k, v in per.items()) + f" features/s "
              f"(load {B.loadavg()})", flush=True)
    med = {k: B.median(v) for k, v in per.items()}
    batches_n = len(batches)  # latency: the wall time of one batch, on average over the pass
    print(B.table([[k, f"{med[k]:.1f}", f"{min(per[k]):.1f}-{max(per[k]):.1f}", f"{1000 * n / med[k] / batches_n:.1f}"]
                   for k in names], ["side", "features/s (median)", "range", "ms per batch"]))
    for ours in ("nmod", "nmod_sorted", *DEPLOYED, *EXTRA_SIDES):
        for ref in ("hf_padded", "hf_dynamic"):
            if ours in med and ref in med:
                print(f"{ours} / {ref}: {med[ours] / med[ref]:.2f}x")
    return med


def main(argv=None) -> None:
    args = parse_args(argv)
    B.setup(args.threads)
    names = [n.strip() for n in args.sides.split(",") if n.strip()]
    unknown = [n for n in names if n not in SIDES + EXTRA_SIDES]
    if unknown:
        raise SystemExit(f"--sides: unknown {unknown}; choose from {SIDES + EXTRA_SIDES}")
    print(B.machine_info())
    tokenizer = B.get_nmod_tokenizer()
    kinds = ["squad-length", "samples"] if args.data == "both" else [args.data]
    with B.temp_dir() as tmp:
        for kind in kinds:
            if kind == "samples":
                data_file = B.sample_subset_json(args.num_questions, args.seed, tmp, source=B.SAMPLES / "dev-v1.1.json")
            else:
                data_file = B.make_data_file(kind, args.num_questions, args.seed, tmp, tokenizer)
            run(kind, data_file, tokenizer, args, names)
    print(f"\nload average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
