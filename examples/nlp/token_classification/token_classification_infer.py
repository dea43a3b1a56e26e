"""Tag the words of a few queries with a model that token_classification.py trained.

    python token_classification_infer.py --checkpoint_dir work_dir/token_classification/checkpoints \\
        --queries "we bought four shirts from the nvidia gear store in santa clara" "Nvidia is a company"

prints each query with its words tagged in NeMo's style, `santa[B-LOC] clara[I-LOC]` (words with the
none label are left bare). The run's folder is all it needs: the encoder flags come from the run's
`args.yaml` (they name the pretrained files the encoder was built from), the labels from its
`label_ids.csv` and the weights from the newest checkpoint; both files are looked for in
`--checkpoint_dir` and one level up (the run's work_dir). A flag passed here overrides the saved one.
"""
import argparse
from pathlib import Path

import numpy as np

import nmod
from nmod.core.config import read_yaml
from nmod.core.errors import ConfigError, MissingFileError
from nmod_nlp import recipe
from nmod_nlp.data.token_classification import LABEL_IDS_FILE, BertTokenClassificationInferDataLayer, read_label_ids
from nmod_nlp.modules.heads import TokenClassifier

# What the head and the windows need from the training run, besides the encoder flags.
RUN_SETTINGS = ("max_seq_length", "num_fc_layers", "none_label")


def run_file(checkpoint_dir: Path, name: str) -> Path:
    for folder in (checkpoint_dir, checkpoint_dir.parent):
        if (folder / name).is_file():
            return folder / name
    raise MissingFileError(f"--checkpoint_dir {checkpoint_dir}: no {name} in it or one level up; pass the "
                           f"checkpoints folder of a token_classification.py run")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", nargs="+", required=True, help="sentences to tag; words are split on spaces")
    p.add_argument("--checkpoint_dir", required=True, help="the checkpoints folder of a trained run")
    p.add_argument("--batch_size", type=int, default=32)
    p.add_argument("--amp_opt_level", default="O0", choices=["O0", "O1", "O2", "O3"])
    p.add_argument("--local_rank", type=int, default=None)
    encoder = recipe.add_encoder_args(p)
    for name in RUN_SETTINGS:
        p.add_argument(f"--{name}", type=int if name != "none_label" else str, default=None)
    args = p.parse_args(argv)
    recipe.check_files_exist(p, args, ["checkpoint_dir"])
    # The run's settings become defaults: flags given here still win.
    saved = read_yaml(run_file(Path(args.checkpoint_dir), "args.yaml")).get("arguments", {})
    keys = [a.dest for a in encoder._group_actions] + list(RUN_SETTINGS)
    p.set_defaults(**{k: saved[k] for k in keys if k in saved and saved[k] is not None})
    args = p.parse_args(argv)
    missing = [f"--{k}" for k in RUN_SETTINGS if getattr(args, k) is None]
    if missing:
        raise ConfigError(f"the run's args.yaml lacks {', '.join(missing)}; pass them")
    return args


def tag_queries(queries: list[str], label_names: list[str], none_label: str, word_preds: list[np.ndarray]) -> list[str]:
    """NeMo's output: each word, followed by `[LABEL]` unless its label is the none label."""
    out = []
    for query, preds in zip(queries, word_preds):
        words = query.split()
        out.append(" ".join(w if label_names[p] == none_label else f"{w}[{label_names[p]}]"
                            for w, p in zip(words, preds)))
    return out


def main(argv=None) -> list[str]:
    args = parse_args(argv)
    checkpoint_dir = Path(args.checkpoint_dir)
    label_ids = read_label_ids(run_file(checkpoint_dir, LABEL_IDS_FILE))
    label_names = sorted(label_ids, key=label_ids.get)
    nf = nmod.NeuralModuleFactory(local_rank=args.local_rank, optimization_level=args.amp_opt_level)

    # The modules of the training graph, with the same names, so the checkpoint's files load into them.
    encoder = recipe.build_encoder(args)
    tokenizer = recipe.build_tokenizer(args)
    classifier = TokenClassifier(encoder.hidden_size, num_classes=len(label_names), num_layers=args.num_fc_layers,
                                 log_softmax=False)
    layer = BertTokenClassificationInferDataLayer(args.queries, tokenizer=tokenizer,
                                                  max_seq_length=args.max_seq_length, batch_size=args.batch_size)
    batch = layer()
    hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.input_type_ids, attention_mask=batch.input_mask)
    logits = classifier(hidden_states=hidden)
    all_logits, all_masks = nf.infer([logits, batch.subtokens_mask], checkpoint_dir=str(checkpoint_dir))

    # Windows come in query order; each word's prediction is on its first sub-token.
    per_window = [row_logits.argmax(-1)[row_mask.bool()].numpy()
                  for b_logits, b_mask in zip(all_logits, all_masks) for row_logits, row_mask in zip(b_logits, b_mask)]
    per_query = [[] for _ in args.queries]
    for window, preds in zip(layer.features.sentence_index, per_window):
        per_query[window].append(preds)
    word_preds = [np.concatenate(p) if p else np.zeros(0, dtype=np.int64) for p in per_query]
    tagged = tag_queries(args.queries, label_names, args.none_label, word_preds)
    if nf.global_rank == 0:
        for query, line in zip(args.queries, tagged):
            print(f"Query : {query}\nResult: {line}")
    return tagged


if __name__ == "__main__":
    recipe.run(main)
