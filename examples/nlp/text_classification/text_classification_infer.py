"""Classify new sentences with a model folder written by `text_classification_with_bert.py`, and nothing else.

    python text_classification_infer.py --model_dir work_dir/text_classification/model \\
        --queries "the screen cracked after a week" "fast delivery, works great"
    python text_classification_infer.py --model_dir work_dir/text_classification/model --input_file dev.tsv

`--input_file` is one sentence a line, or a file in the recipe's own format (a `sentence<TAB>label`
header, then a sentence and its label a line: the labels are ignored). The folder holds the
encoder, the head, the tokenizer, the labels and the run's settings; it needs no Megatron config,
checkpoint or recipe flag, and works from any directory. Prints one JSON line per sentence:
`{"text": ..., "label": ..., "score": ...}`.
"""
import argparse
import json

from nmod_nlp import recipe
from nmod_nlp.inference import TextClassifier, text_inputs

QUERIES = ["the screen cracked after a week", "fast delivery and it works great"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", nargs="+", help="sentences to classify (default: two examples)")
    p.add_argument("--input_file", help="one sentence a line, or the recipe's sentence<TAB>label TSV")
    recipe.add_infer_args(p, work_dir="work_dir/text_classification")
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    classifier = TextClassifier.from_model_dir(recipe.infer_model_dir(args), args.batch_size, args.device)
    texts = text_inputs(recipe.read_queries(args.queries, args.input_file, QUERIES), labelled_header="sentence\tlabel")
    results = [{"text": t, **{k: v for k, v in r.items() if k != "scores"}}
               for t, r in zip(texts, classifier.predict(texts))]
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return results


if __name__ == "__main__":
    recipe.run(main)
