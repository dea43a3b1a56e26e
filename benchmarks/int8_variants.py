"""Which int8 quantization keeps a fine-tuned model's metric: the same trained CoNLL-2003 NER model scored
in fp32 and through several quantizations of its own weights, so every difference is paired exactly.

    .venv/bin/python benchmarks/int8_variants.py --data_dir ../shared/data/conll2003 --seeds 0,1,2   # ~5 min a seed

Per seed, `ner_accuracy.run_nmod` trains the NER recipe's graph (`--head linear`) at NeMo 0.11's budget
(batch 8, 5 epochs, lr 5e-5) on `--train_sentences` of CoNLL-2003 and scores `--dev_sentences` dev
sentences with `conlleval`. Then, on copies of the trained modules, each variant answers the same dev
windows (64 a batch, padded per batch: activations are quantized with one scale per batch, so the
batching is part of the variant) and prints its entity F1 minus fp32's:

* `torch_per_tensor`: torch's dynamic int8 Linear layers, one weight scale per tensor (what
  `precision="int8"` did before);
* `torch_per_channel`: one weight scale per output channel, what `precision="int8"` does
  (`nmod_nlp.inference.precision`);
* `torch_per_channel_ffn_out_fp32`: the same with each layer's FFN output projection left in fp32, the
  other usual remedy for BERT's outlier activations;
* `ort_per_tensor` / `ort_per_channel_batch_scale`: ONNX Runtime's dynamic quantization of the
  exported graph, one activation scale per batch (what `runtime="onnxruntime", precision="int8"` did
  before 2026-12-07, per tensor then per channel);
* `ort_per_token` / `ort_per_token_7bit_weights`: one activation scale per token
  (`nmod_nlp.inference.onnx_int8`; the first is what `runtime="onnxruntime", precision="int8"` does);
* `torch_bf16`: not int8, the forward under bf16 autocast (`precision="bf16"`), for the same table.

`--squad_models DIR,...` scores SQuAD models kept by `squad_accuracy.py --sides nmod --keep_models DIR`
instead of training CoNLL ones: each model folder's `QuestionAnswerer` on the split's eval.json, the
official EM/F1 of each variant minus eager fp32's.
"""
from __future__ import annotations

import argparse
import copy
import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402
import ner_accuracy as N  # noqa: E402
import squad_accuracy as S  # noqa: E402

VARIANTS = ("torch_per_tensor", "torch_per_channel", "torch_per_channel_ffn_out_fp32", "ort_per_tensor",
            "ort_per_channel_batch_scale", "ort_per_token", "ort_per_token_7bit_weights", "torch_bf16")


def is_ffn_output(name: str) -> bool:
    """BERT's `layer.N.output.dense` (the FFN's second Linear), not `attention.output.dense`."""
    return name.endswith("output.dense") and "attention" not in name


def eager(encoder, head):
    """Copies of the trained modules, fp32, called as the predictors call them."""
    from nmod_nlp.inference.runtime import EagerModel

    return EagerModel(copy.deepcopy(encoder), copy.deepcopy(head), None, "fp32")


def variant(name: str, encoder, head):
    """`torch_per_channel` and `ort_per_token` are the predictors' own serving paths; the
    others are built here (weights 7-bit on CPUs without VNNI, as the serving paths', but for the 7-bit variant)."""
    from nmod_nlp.inference.onnx_int8 import quantize_per_token
    from nmod_nlp.inference.runtime import quantize_int8

    if name == "torch_per_channel":
        return B.serving_copy(encoder, head, "int8")
    if name == "torch_bf16":
        return B.serving_copy(encoder, head, "bf16")
    if name == "ort_per_token":
        return B.serving_copy(encoder, head, "ort_int8")
    if name == "ort_per_channel_batch_scale":
        return B.ort_int8_copy(encoder, head, functools.partial(quantize_int8, activations="tensor"))
    if name == "ort_per_token_7bit_weights":
        return B.ort_int8_copy(encoder, head, functools.partial(quantize_per_token, weight_levels=63))
    if name == "ort_per_tensor":
        return B.ort_int8_copy(encoder, head, functools.partial(quantize_int8, activations="tensor",
                                                         per_channel=False))
    keep = is_ffn_output if name.endswith("ffn_out_fp32") else (lambda n: False)
    return B.torch_int8_copy(encoder, head, per_channel="per_channel" in name, keep_fp32=keep)


def squad_scores(folders: list[str], names: list[str], batch_size: int) -> dict:
    """Per model folder of `squad_accuracy.py --keep_models` folders (one a seed): the official EM/F1 of its
    `QuestionAnswerer` on its eval.json, eager fp32 and through each variant (the predictor's own
    windows, batches and decoding; only the encoder-and-head call is swapped)."""
    from nmod_nlp.inference import QuestionAnswerer

    change = {v: {"exact_match": [], "f1": []} for v in names}
    model_dirs = [m for folder in folders for m in sorted(Path(folder).glob("nmod-*/model"))]  # one a seed
    for model_dir in model_dirs:
        eval_file = model_dir.parents[1] / "eval.json"
        qa = QuestionAnswerer.from_model_dir(model_dir, batch_size=batch_size)
        fp32 = S.official(str(eval_file), {r["id"]: r["answer"] for r in qa.answer_file(eval_file)})
        line = [f"{model_dir.parent.name}: fp32 EM {fp32['exact_match']:.2f} F1 {fp32['f1']:.2f}"]
        for name in names:
            qa.forward = variant(name, qa.encoder, qa.qa_head)
            got = S.official(str(eval_file), {r["id"]: r["answer"] for r in qa.answer_file(eval_file)})
            for metric in ("exact_match", "f1"):
                change[name][metric].append(got[metric] - fp32[metric])
            line.append(f"{name} EM {got['exact_match'] - fp32['exact_match']:+.2f} F1 {got['f1'] - fp32['f1']:+.2f}")
        print("; ".join(line), flush=True)
    print(B.table([[v, B.fmt_mean_std(change[v]["exact_match"]), B.fmt_mean_std(change[v]["f1"]),
                    " / ".join(f"{c:+.2f}" for c in change[v]["f1"])] for v in names],
                  ["variant", "EM minus fp32", "F1 minus fp32, mean ± std", "F1 per model"]))
    return change


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/conll2003", help="CoNLL-2003 train.txt and dev.txt")
    p.add_argument("--train_sentences", type=int, default=1000)
    p.add_argument("--dev_sentences", type=int, default=800)
    p.add_argument("--budget", default="nemo", choices=sorted(N.BUDGETS))
    p.add_argument("--seeds", default="0")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {VARIANTS}")
    p.add_argument("--squad_models", help="instead of training CoNLL models: comma-separated folders of "
                   "`squad_accuracy.py --keep_models`, each model folder scored on its own eval.json")
    p.add_argument("--squad_batch_size", type=int, default=16, help="the QuestionAnswerer's batch (the recipe's)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    if any(v not in VARIANTS for v in names):
        raise SystemExit(f"--variants of {VARIANTS}, got {args.variants!r}")
    if args.squad_models:
        B.setup(args.threads)
        print(B.machine_info())
        folders = [f for f in args.squad_models.split(",") if f]
        lacking = [f for f in folders
                   if not (Path(f) / "eval.json").is_file() or not list(Path(f).glob("nmod-*/model"))]
        if lacking:
            raise SystemExit(f"--squad_models: {lacking} hold no eval.json and nmod-<seed>/model "
                             "(make them with squad_accuracy.py --sides nmod --keep_models DIR)")
        return squad_scores(folders, names, args.squad_batch_size)
    if not Path(args.data_dir).is_dir():
        raise SystemExit(f"--variants of {VARIANTS}; --data_dir {args.data_dir} must hold CoNLL-2003's "
                         "train.txt and dev.txt")
    args.attention_impl, args.max_seq_length = "auto", 128
    for key, value in N.BUDGETS[args.budget].items():
        setattr(args, key, value)
    B.setup(args.threads)
    from nmod_nlp.tokenizers import BertWordPieceTokenizer

    print(B.machine_info())
    change = {v: [] for v in names}
    with B.temp_dir() as tmp:
        data = N.prepare(Path(args.data_dir), Path(tmp), args.train_sentences, args.dev_sentences, seed=0)
        tokenizer = BertWordPieceTokenizer(Path(B.MODEL_DIR) / "vocab.txt", do_lower_case=True)
        train, dev, label_ids = N.layers(data, tokenizer, args.batch_size, args.max_seq_length)
        for seed in (int(s) for s in args.seeds.split(",")):
            run = N.run_nmod(train, dev, label_ids, args, seed, "linear", serving=False)
            encoder, head = run["modules"]
            fp32 = N.score(N.deployed_preds(eager(encoder, head), dev), dev, label_ids)["f1"]
            line = [f"seed {seed}: fp32 {fp32:.2f} (the recipe's own scoring {run['result']['f1']:.2f})"]
            for name in names:
                f1 = N.score(N.deployed_preds(variant(name, encoder, head), dev), dev, label_ids)["f1"]
                change[name].append(f1 - fp32)
                line.append(f"{name} {f1 - fp32:+.2f}")
            print("; ".join(line), flush=True)
    print(B.table([[v, B.fmt_mean_std(change[v]), " / ".join(f"{c:+.2f}" for c in change[v])] for v in names],
                  ["variant", "entity F1 minus fp32, mean ± std", "per seed"]))
    return change


if __name__ == "__main__":
    main()
