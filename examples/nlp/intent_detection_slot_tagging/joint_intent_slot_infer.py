"""Intents and slots for new queries, with a model folder written by `joint_intent_slot_with_bert.py`
and nothing else.

    python joint_intent_slot_infer.py --model_dir work_dir/intent_slot/model \\
        --queries "book a flight to rome tomorrow" --queries "play adele"

The folder holds the encoder, the heads, the tokenizer, the intent and slot names and the run's
settings; it needs no Megatron config, checkpoint or recipe flag, and works from any directory. Each
query is split into words on spaces, as the training data was; each word gets the slot predicted on
its first sub-token. Prints one line per query: `Query: <query>  intent: <name>  slots: <one per word>`.
"""
from nmod_nlp import recipe
from nmod_nlp.inference import IntentSlotTagger

QUERIES = ["what is the weather in paris tomorrow", "book a flight to tokyo next monday", "play some adele",
           "wake me up at seven am"]


def main(argv=None) -> list[dict]:
    args = recipe.infer_parser(__doc__, work_dir="work_dir/intent_slot", queries="queries (default: four examples)",
                               input_file="a text file: one query a line").parse_args(argv)
    queries = recipe.read_queries(args, QUERIES)
    results = [{"query": query, "intent": r["intent"], "slots": r["slots"]}
               for query, r in zip(queries, recipe.load_predictor(IntentSlotTagger, args).predict(queries))]
    for r in results:
        print(f"Query: {r['query']}\tintent: {r['intent']}\tslots: {' '.join(r['slots'])}")
    return results


if __name__ == "__main__":
    recipe.run(main)
