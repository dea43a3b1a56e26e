"""Intents and slots for new queries, with a model folder written by `joint_intent_slot_with_bert.py`
and nothing else.

    python joint_intent_slot_infer.py --model_dir work_dir/intent_slot/model \\
        --queries "book a flight to rome tomorrow" --queries "play adele"

The folder holds the encoder, the heads, the tokenizer, the intent and slot names and the run's
settings; it needs no Megatron config, checkpoint or recipe flag, and works from any directory. Each
query is split into words on spaces, as the training data was; each word gets the slot predicted on
its first sub-token. Prints one line per query: `Query: <query>  intent: <name>  slots: <one per word>`.
"""
import argparse

from nmod_nlp import recipe
from nmod_nlp.inference import IntentSlotTagger

QUERIES = ["what is the weather in paris tomorrow", "book a flight to tokyo next monday", "play some adele",
           "wake me up at seven am"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", "--query", action="append", help="a query (repeat the flag for several)")
    p.add_argument("--input_file", help="a text file: one query a line")
    recipe.add_infer_args(p, work_dir="work_dir/intent_slot")
    return p.parse_args(argv)


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    tagger = IntentSlotTagger.from_model_dir(recipe.infer_model_dir(args), args.batch_size, args.device)
    queries = recipe.read_queries(args.queries, args.input_file, QUERIES)
    results = []
    for query, r in zip(queries, tagger.predict(queries)):
        results.append({"query": query, "intent": r["intent"], "slots": r["slots"]})
        print(f"Query: {query}\tintent: {r['intent']}\tslots: {' '.join(r['slots'])}")
    return results


if __name__ == "__main__":
    recipe.run(main)
