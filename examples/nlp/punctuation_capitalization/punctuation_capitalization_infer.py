"""Restore punctuation and capitals in raw lower-case text, from a run of `punctuation_capitalization.py`
and nothing else: `"how are you"` -> `"How are you?"`.

    python punctuation_capitalization_infer.py --work_dir work_dir/punctuation_capitalization \\
        --queries "how are you" --queries "we met anna in paris on monday"

The run folder has all it takes: `args.yaml` (the encoder flags and head settings the run used),
`punct_label_ids.csv` and `capit_label_ids.csv` (the labels in id order) and `checkpoints/` (the
fine-tuned weights; `--checkpoint_dir` picks another folder). Each query is split into words on
spaces; each word takes the labels predicted on its first sub-token: `U` capitalizes it, a mark
other than the none label follows it. A query longer than the run's `--max_seq_length` is read in
consecutive windows. Prints `Query: <query>` and `Combined: <text>` for each query.
"""
import argparse
from pathlib import Path

import numpy as np

import nmod
from nmod.core.config import read_yaml
from nmod_nlp import recipe
from nmod_nlp.data.punctuation_capitalization import CAPIT_LABEL_IDS_FILE, PUNCT_LABEL_IDS_FILE, punctuate
from nmod_nlp.data.token_classification import BertTokenClassificationInferDataLayer, read_label_ids
from nmod_nlp.modules.heads import PunctCapitTokenClassifier

QUERIES = ["how are you", "we will meet anna in paris on monday", "where is the train station",
           "hello peter thanks for the report"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work_dir", "--run_dir", dest="run_dir", default="work_dir/punctuation_capitalization",
                   help="the --work_dir of a training run")
    p.add_argument("--checkpoint_dir", help="the weights to use (default: WORK_DIR/checkpoints)")
    p.add_argument("--queries", "--query", action="append", help="a lower-case text (repeat the flag for several)")
    p.add_argument("--batch_size", type=int, default=32)
    args = p.parse_args(argv)
    args.queries = args.queries or QUERIES
    args.checkpoint_dir = args.checkpoint_dir or str(Path(args.run_dir) / "checkpoints")
    run = Path(args.run_dir)
    for path in (run / "args.yaml", run / PUNCT_LABEL_IDS_FILE, run / CAPIT_LABEL_IDS_FILE, Path(args.checkpoint_dir)):
        if not path.exists():
            p.error(f"{path}: no such file; --work_dir must be the --work_dir of a punctuation_capitalization.py run")
    return args


def main(argv=None) -> list[str]:
    args = parse_args(argv)
    run = Path(args.run_dir)
    trained = argparse.Namespace(**read_yaml(run / "args.yaml")["arguments"])  # the run's resolved flags
    punct_ids, capit_ids = read_label_ids(run / PUNCT_LABEL_IDS_FILE), read_label_ids(run / CAPIT_LABEL_IDS_FILE)
    punct_names, capit_names = sorted(punct_ids, key=punct_ids.get), sorted(capit_ids, key=capit_ids.get)
    nf = nmod.NeuralModuleFactory(random_seed=trained.seed)

    encoder = recipe.build_encoder(trained)
    tokenizer = recipe.build_tokenizer(trained)
    classifier = PunctCapitTokenClassifier(
        encoder.hidden_size, punct_num_classes=len(punct_names), capit_num_classes=len(capit_names),
        punct_num_layers=trained.punct_num_fc_layers, capit_num_layers=trained.capit_num_fc_layers,
        dropout=trained.fc_dropout, log_softmax=False)
    layer = BertTokenClassificationInferDataLayer(args.queries, tokenizer=tokenizer,
                                                  max_seq_length=trained.max_seq_length, batch_size=args.batch_size)
    batch = layer()
    hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.input_type_ids, attention_mask=batch.input_mask)
    logits = classifier(hidden_states=hidden)
    punct_batches, capit_batches, mask_batches = nf.infer(
        [logits.punct_logits, logits.capit_logits, batch.subtokens_mask], checkpoint_dir=args.checkpoint_dir)

    # One prediction per word, in query order: the windows follow the queries, each word's first sub-token.
    def per_word(batches) -> np.ndarray:
        return np.concatenate([b.argmax(-1)[m.bool()].numpy() for b, m in zip(batches, mask_batches)])

    punct, capit = per_word(punct_batches), per_word(capit_batches)
    ends = np.cumsum(layer.words_per_sentence)
    texts = []
    for q, query in enumerate(args.queries):
        words = slice(ends[q] - layer.words_per_sentence[q], ends[q])
        texts.append(punctuate(query.split(), [punct_names[i] for i in punct[words]],
                               [capit_names[i] for i in capit[words]], none_label=trained.none_label))
        print(f"Query: {query}\nCombined: {texts[-1]}")
    return texts


if __name__ == "__main__":
    recipe.run(main)
