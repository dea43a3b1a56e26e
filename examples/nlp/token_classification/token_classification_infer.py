"""Tag the words of new sentences with a model folder written by `token_classification.py`, and nothing else.

    python token_classification_infer.py --model_dir work_dir/token_classification/model \\
        --queries "we bought four shirts from the nvidia gear store in santa clara" "Nvidia is a company"
    python token_classification_infer.py --model_dir work_dir/ner/model --input_file sentences.txt

The folder holds the encoder, the head, the tokenizer, the label names and the run's settings; it
needs no Megatron config, checkpoint or recipe flag, and works from any directory. Words are split
on spaces, as in the training files; each word takes the label predicted on its first sub-token.
Prints NeMo's format for each query: `Query : <query>` and `Result: <words, tagged word[LABEL]>`
(words with the none label stay bare).
"""
import argparse

from nmod_nlp import recipe
from nmod_nlp.inference import TokenTagger

QUERIES = ["we bought four shirts from the nvidia gear store in santa clara", "Nvidia is a company",
           "The Adventures of Tom Sawyer by Mark Twain is an 1876 novel about a young boy growing up along the "
           "Mississippi River"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", nargs="+", help="sentences to tag (default: three examples)")
    p.add_argument("--input_file", help="a text file: one sentence a line")
    recipe.add_infer_args(p, work_dir="work_dir/token_classification")
    return p.parse_args(argv)


def main(argv=None) -> list[str]:
    args = parse_args(argv)
    tagger = TokenTagger.from_model_dir(recipe.infer_model_dir(args), args.batch_size, args.device)
    queries = recipe.read_queries(args.queries, args.input_file, QUERIES)
    results = tagger.predict(queries)
    for query, result in zip(queries, results):
        print(f"Query : {query}\nResult: {result['tagged']}")
    return [r["tagged"] for r in results]


if __name__ == "__main__":
    recipe.run(main)
