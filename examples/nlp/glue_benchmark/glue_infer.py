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
from nmod.core.errors import ConfigError
from nmod_nlp import recipe
from nmod_nlp.inference import TextClassifier, glue_file_inputs, text_inputs

QUERIES = ["a gripping, funny and moving film", "the plot is thin and the acting is wooden"]


def main(argv=None) -> list[dict]:
    p = recipe.infer_parser(__doc__, work_dir="work_dir/glue",
                            queries="texts, or pairs as 'text_a<TAB>text_b' (default: two examples)",
                            input_file="one text (or tab-separated pair) a line, or a GLUE file with --glue_split")
    p.add_argument("--glue_split", help="read --input_file as this split of the folder's GLUE task (dev, test, ...)")
    args = p.parse_args(argv)
    classifier = recipe.load_predictor(TextClassifier, args)
    if args.glue_split:
        if not args.input_file:
            raise ConfigError("--glue_split reads --input_file; pass the GLUE file")
        texts = glue_file_inputs(classifier, args.input_file, args.glue_split)
    else:
        texts = text_inputs(recipe.read_queries(args, QUERIES))
    return recipe.print_json_lines([{"text": list(t) if isinstance(t, tuple) else t,
                                     **{k: v for k, v in r.items() if k != "scores"}}
                                    for t, r in zip(texts, classifier.predict(texts))])


if __name__ == "__main__":
    recipe.run(main)
