"""Convert a CoNLL-2003-style IOB file into the files token_classification.py reads.

    python import_from_iob_format.py --data_file DIR/train.txt [--max_length N]

writes `DIR/text_train.txt` (one sentence per line, words separated by spaces) and
`DIR/labels_train.txt` (one label per word on the matching line). The input has one word per line,
its label in the last column (IOB1 or IOB2), and a blank line between sentences; `-DOCSTART-`
lines are dropped. `--max_length N` splits sentences of more than N words into pieces.
"""
import argparse

from nmod_nlp import recipe
from nmod_nlp.data.token_classification.iob import import_from_iob_format


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_file", required=True, help="a CoNLL-style file, e.g. conll2003/train.txt")
    p.add_argument("--max_length", type=recipe.optional_number(int), default=None,
                   help="split sentences longer than this many words (-1: never)")
    args = p.parse_args(argv)
    recipe.check_files_exist(p, args, ["data_file"])
    done = import_from_iob_format(args.data_file, args.max_length)
    print(f"wrote {done.sentences} sentences ({done.words} words) to {done.text_file} and {done.label_file}"
          + (f"; skipped {done.summary.skipped} malformed lines" if done.summary.skipped else ""))
    return done


if __name__ == "__main__":
    recipe.run(main)
