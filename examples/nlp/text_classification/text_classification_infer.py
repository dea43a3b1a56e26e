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
from nmod_nlp import recipe
from nmod_nlp.inference import TextClassifier, text_inputs

QUERIES = ["the screen cracked after a week", "fast delivery and it works great"]


def main(argv=None) -> list[dict]:
    args = recipe.infer_parser(__doc__, work_dir="work_dir/text_classification",
                               queries="sentences to classify (default: two examples)",
                               input_file="one sentence a line, or the recipe's sentence<TAB>label TSV").parse_args(argv)
    classifier = recipe.load_predictor(TextClassifier, args)
    texts = text_inputs(recipe.read_queries(args, QUERIES), labelled_header="sentence\tlabel")
    return recipe.print_json_lines([{"text": t, **{k: v for k, v in r.items() if k != "scores"}}
                                    for t, r in zip(texts, classifier.predict(texts))])


if __name__ == "__main__":
    recipe.run(main)
