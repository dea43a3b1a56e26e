"""SQuAD feature creation: nmod's data pipeline vs the `transformers` fast-tokenizer preprocessing of `run_qa.py`.

    .venv/bin/python benchmarks/preprocessing.py                   # ~1 min on 2 cores
    .venv/bin/python benchmarks/preprocessing.py --repeat 40 --reps 7

Same examples on both sides, caching off: the shipped sample's training file repeated `--repeat`
times (ids made unique), and a generated SQuAD-length set of as many questions. Two timings each:

* features only, from examples already in memory: nmod's `convert_examples_to_features` (two batched
  Rust tokenizer calls, windows cut in Python) vs run_qa.py's `prepare_train_features` applied in
  batches of 1000 examples, as `datasets.map(batched=True)` calls it (tokenizer(question, context,
  truncation="only_second", max_length=384, stride=128, return_overflowing_tokens=True,
  return_offsets_mapping=True, padding="max_length") plus the start/end token loop). `datasets` is
  not installed, so its Arrow conversion and caching are not counted: that favours HF.
* end to end from the JSON file: nmod's `SquadDataset(use_cache=False)` (what the data layer runs:
  read and check the file, then features) vs `json.load`, flattening into run_qa's columns, then
  `prepare_train_features`.

The windows differ by design: nmod follows Google's `run_squad.py` (`doc_stride` = step between
windows), HF's `stride` is the overlap between windows, so with 128 for both nmod cuts more windows
from long contexts (more work for nmod); both feature counts are printed and the ratio is in
examples/s. Repetitions alternate nmod/HF; medians reported.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=10, help="copies of the sample's 303 training questions")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--max_seq_length", type=int, default=384)
    p.add_argument("--doc_stride", type=int, default=128)
    p.add_argument("--max_query_length", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def repeated_sample_json(repeat: int, out_dir: str) -> str:
    doc = json.loads((B.SAMPLES / "train-v1.1.json").read_text())
    data = []
    for r in range(repeat):
        for article in doc["data"]:
            data.append({"title": f"{article['title']}-{r}", "paragraphs": [
                {"context": p["context"], "qas": [dict(q, id=f"{q['id']}-r{r}") for q in p["qas"]]}
                for p in article["paragraphs"]]})
    path = Path(out_dir) / "samples_repeated.json"
    path.write_text(json.dumps({"version": "1.1", "data": data}))
    return str(path)


# ---- run_qa.py ------------------------------------------------------------------------------------
def hf_columns(path: str) -> dict:
    """The SQuAD JSON flattened into the columns of the `squad` dataset that run_qa.py maps over."""
    doc = json.loads(Path(path).read_text())
    cols = {"id": [], "title": [], "context": [], "question": [], "answers": []}
    for article in doc["data"]:
        for p in article["paragraphs"]:
            for q in p["qas"]:
                cols["id"].append(q["id"])
                cols["title"].append(article.get("title", ""))
                cols["context"].append(p["context"])
                cols["question"].append(q["question"])
                cols["answers"].append({"text": [a["text"] for a in q["answers"]],
                                        "answer_start": [a["answer_start"] for a in q["answers"]]})
    return cols


def make_prepare_train_features(tokenizer, max_seq_length: int, doc_stride: int):
    """`prepare_train_features` of transformers' examples/pytorch/question-answering/run_qa.py, as written
    there (pad_on_right, pad_to_max_length=True)."""
    pad_on_right = tokenizer.padding_side == "right"
    question_column_name, context_column_name, answer_column_name = "question", "context", "answers"

    def prepare_train_features(examples):
        examples[question_column_name] = [q.lstrip() for q in examples[question_column_name]]
        tokenized_examples = tokenizer(
            examples[question_column_name if pad_on_right else context_column_name],
            examples[context_column_name if pad_on_right else question_column_name],
            truncation="only_second" if pad_on_right else "only_first",
            max_length=max_seq_length,
            stride=doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding="max_length",
        )
        sample_mapping = tokenized_examples.pop("overflow_to_sample_mapping")
        offset_mapping = tokenized_examples.pop("offset_mapping")
        tokenized_examples["start_positions"] = []
        tokenized_examples["end_positions"] = []
        for i, offsets in enumerate(offset_mapping):
            input_ids = tokenized_examples["input_ids"][i]
            if tokenizer.cls_token_id in input_ids:
                cls_index = input_ids.index(tokenizer.cls_token_id)
            elif tokenizer.bos_token_id in input_ids:
                cls_index = input_ids.index(tokenizer.bos_token_id)
            else:
                cls_index = 0
            sequence_ids = tokenized_examples.sequence_ids(i)
            sample_index = sample_mapping[i]
            answers = examples[answer_column_name][sample_index]
            if len(answers["answer_start"]) == 0:
                tokenized_examples["start_positions"].append(cls_index)
                tokenized_examples["end_positions"].append(cls_index)
            else:
                start_char = answers["answer_start"][0]
                end_char = start_char + len(answers["text"][0])
                token_start_index = 0
                while sequence_ids[token_start_index] != (1 if pad_on_right else 0):
                    token_start_index += 1
                token_end_index = len(input_ids) - 1
                while sequence_ids[token_end_index] != (1 if pad_on_right else 0):
                    token_end_index -= 1
                if not (offsets[token_start_index][0] <= start_char and offsets[token_end_index][1] >= end_char):
                    tokenized_examples["start_positions"].append(cls_index)
                    tokenized_examples["end_positions"].append(cls_index)
                else:
                    while token_start_index < len(offsets) and offsets[token_start_index][0] <= start_char:
                        token_start_index += 1
                    tokenized_examples["start_positions"].append(token_start_index - 1)
                    while offsets[token_end_index][1] >= end_char:
                        token_end_index -= 1
                    tokenized_examples["end_positions"].append(token_end_index + 1)
        return tokenized_examples

    return prepare_train_features


def hf_map(cols: dict, prepare, batch_size: int = 1000) -> int:
    """`datasets.map(prepare, batched=True)` without Arrow: batches of 1000 rows; returns #features."""
    n = len(cols["id"])
    features = 0
    for i in range(0, n, batch_size):
        out = prepare({k: v[i:i + batch_size] for k, v in cols.items()})
        features += len(out["input_ids"])
    return features


def main(argv=None) -> None:
    args = parse_args(argv)
    B.setup(args.threads)
    print(B.machine_info())
    from transformers import AutoTokenizer

    from nmod_nlp.data.squad import SquadDataset, convert_examples_to_features, read_squad_file

    nmod_tok = B.get_nmod_tokenizer()
    hf_tok = AutoTokenizer.from_pretrained(B.MODEL_DIR)
    if not hf_tok.is_fast:
        raise SystemExit(f"{B.MODEL_DIR}: transformers gave a slow tokenizer; run_qa.py requires a fast one")
    prepare = make_prepare_train_features(hf_tok, args.max_seq_length, args.doc_stride)
    summary = []
    with B.temp_dir() as tmp:
        files = {"samples x%d" % args.repeat: repeated_sample_json(args.repeat, tmp)}
        n_sample = 303 * args.repeat
        files["squad-length"] = B.make_data_file("squad-length", n_sample, args.seed, tmp, nmod_tok)
        for name, path in files.items():
            data = read_squad_file(path, False, "train")
            cols = hf_columns(path)
            n = len(data.examples)
            if n != len(cols["id"]):
                raise SystemExit(f"{path}: nmod reads {n} examples, the HF columns hold {len(cols['id'])}")

            def nmod_features():
                return len(convert_examples_to_features(data, nmod_tok, args.max_seq_length, args.doc_stride,
                                                        args.max_query_length))

            def hf_features():
                return hf_map({k: list(v) for k, v in cols.items()}, prepare)

            def nmod_e2e():
                return len(SquadDataset(path, nmod_tok, mode="train", max_seq_length=args.max_seq_length,
                                        doc_stride=args.doc_stride, max_query_length=args.max_query_length,
                                        use_cache=False))

            def hf_e2e():
                return hf_map(hf_columns(path), prepare)

            print(f"\n{name}: {n} examples, {len(data.contexts)} contexts (load {B.loadavg()})")
            for label, ours, theirs in (("features only", nmod_features, hf_features),
                                        ("end to end from JSON", nmod_e2e, hf_e2e)):
                ours(), theirs()  # warm up
                t = {"nmod": [], "hf": []}
                counts = {}
                for rep in range(args.reps):
                    for side in (("nmod", "hf") if rep % 2 == 0 else ("hf", "nmod")):
                        fn = ours if side == "nmod" else theirs
                        start = time.perf_counter()
                        counts[side] = fn()
                        t[side].append(time.perf_counter() - start)
                med = {k: B.median(v) for k, v in t.items()}
                ratio = med["hf"] / med["nmod"]
                print(B.table([[s, f"{n / med[s]:.0f}", f"{counts[s] / med[s]:.0f}", counts[s], f"{med[s] * 1e3:.0f}"]
                               for s in ("nmod", "hf")],
                              [label, "examples/s", "features/s", "features", "ms (median)"]))
                print(f"nmod / HF: {ratio:.2f}x examples/s")
                summary.append((name, label, ratio))
    print("\nsummary (target: nmod >= HF):")
    for name, label, ratio in summary:
        print(f"  {name}, {label}: {ratio:.2f}x ({'met' if ratio >= 1 else 'NOT met'})")
    print(f"load average at end: {B.loadavg()}")


if __name__ == "__main__":
    main()
