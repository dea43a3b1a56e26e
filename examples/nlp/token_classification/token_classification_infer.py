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
from nmod_nlp import recipe
from nmod_nlp.inference import TokenTagger

QUERIES = ["we bought four shirts from the nvidia gear store in santa clara", "Nvidia is a company",
           "The Adventures of Tom Sawyer by Mark Twain is an 1876 novel about a young boy growing up along the "
           "Mississippi River"]


def main(argv=None) -> list[str]:
    args = recipe.infer_parser(__doc__, work_dir="work_dir/token_classification",
                               queries="sentences to tag (default: three examples)",
                               input_file="a text file: one sentence a line").parse_args(argv)
    queries = recipe.read_queries(args, QUERIES)
    tagged = [r["tagged"] for r in recipe.load_predictor(TokenTagger, args).predict(queries)]
    for query, result in zip(queries, tagged):
        print(f"Query : {query}\nResult: {result}")
    return tagged


if __name__ == "__main__":
    recipe.run(main)
