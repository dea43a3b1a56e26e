"""Restore punctuation and capitals in raw lower-case text with a model folder written by
`punctuation_capitalization.py`, and nothing else: `"how are you"` -> `"How are you?"`.

    python punctuation_capitalization_infer.py --model_dir work_dir/punctuation_capitalization/model \\
        --queries "how are you" --queries "we met anna in paris on monday"

The folder holds the encoder, the two heads, the tokenizer, the label names and the run's settings;
it needs no Megatron config, checkpoint or recipe flag, and works from any directory. Each query is
split into words on spaces; each word takes the labels predicted on its first sub-token: `U`
capitalizes it, a mark other than the none label follows it. A query longer than the run's
`--max_seq_length` is read in consecutive windows. Prints `Query: <query>` and `Combined: <text>`.
"""
from nmod_nlp import recipe
from nmod_nlp.inference import PunctuationCapitalizer

QUERIES = ["how are you", "we will meet anna in paris on monday", "where is the train station",
           "hello peter thanks for the report"]


def main(argv=None) -> list[str]:
    args = recipe.infer_parser(__doc__, work_dir="work_dir/punctuation_capitalization",
                               queries="lower-case texts (default: four examples)",
                               input_file="a text file: one text a line").parse_args(argv)
    queries = recipe.read_queries(args, QUERIES)
    texts = [r["text"] for r in recipe.load_predictor(PunctuationCapitalizer, args).predict(queries)]
    for query, text in zip(queries, texts):
        print(f"Query: {query}\nCombined: {text}")
    return texts


if __name__ == "__main__":
    recipe.run(main)
