"""Predict GLUE labels (or STS-B scores) for new sentences and pairs with a model folder written by
`glue_benchmark_with_bert.py`, and nothing else.

    python glue_infer.py --model_dir work_dir/glue/model --queries "a gripping, funny film"
    python glue_infer.py --model_dir work_dir/mrpc/model --queries "The cat sat.<TAB>A cat was sitting."
    python glue_infer.py --model_dir work_dir/mrpc/model --input_file pairs.txt   # one text (or pair) a line
    python glue_infer.py --model_dir work_dir/rte/model --input_file glue_data/RTE/test.tsv --glue_split test

A tab inside a query or a line separates the two texts of a pair. `--glue_split` reads a file in the
GLUE download's format for the folder's task instead (`dev`, `test`, ...; its columns, its header).
The folder holds the encoder, the head, the tokenizer, the labels and the run's settings; it needs
no Megatron config, checkpoint or recipe flag, and works from any directory. Prints one JSON line
per input: `{"text": ..., "label": ..., "score": ...}` (a pair's `text` is `[text_a, text_b]`;
STS-B gives only its `score`, the predicted similarity).
"""
import argparse
import json

from nmod.core.errors import ConfigError
from nmod_nlp import recipe
from nmod_nlp.inference import TextClassifier, glue_file_inputs, text_inputs

QUERIES = ["a gripping, funny and moving film", "the plot is thin and the acting is wooden"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", nargs="+", help="texts, or pairs as 'text_a<TAB>text_b' (default: two examples)")
    p.add_argument("--input_file", help="one text (or tab-separated pair) a line, or a GLUE file with --glue_split")
    p.add_argument("--glue_split", help="read --input_file as this split of the folder's GLUE task (dev, test, ...)")
    recipe.add_infer_args(p, work_dir="work_dir/glue")
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    classifier = TextClassifier.from_model_dir(recipe.infer_model_dir(args), args.batch_size, args.device)
    if args.glue_split:
        if not args.input_file:
            raise ConfigError("--glue_split reads --input_file; pass the GLUE file")
        texts = glue_file_inputs(classifier, args.input_file, args.glue_split)
    else:
        texts = text_inputs(recipe.read_queries(args.queries, args.input_file, QUERIES))
    results = [{"text": list(t) if isinstance(t, tuple) else t, **{k: v for k, v in r.items() if k != "scores"}}
               for t, r in zip(texts, classifier.predict(texts))]
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return results


if __name__ == "__main__":
    recipe.run(main)
