"""Intents and slots for new queries, from a run of `joint_intent_slot_with_bert.py` and nothing else.

    python joint_intent_slot_infer.py --work_dir work_dir/intent_slot \\
        --queries "book a flight to rome tomorrow" --queries "play adele"

The run folder has all it takes: `args.yaml` (the encoder flags and settings the run used),
`dict.intents.csv` and `dict.slots.csv` (the label names in id order) and `checkpoints/` (the
fine-tuned weights; `--checkpoint_dir` picks another folder). Each query is split into words on
spaces, as the training data was; each word gets the slot predicted on its first sub-token.
Prints one line per query: `Query: <query>  intent: <name>  slots: <one slot per word>`.
"""
import argparse
from pathlib import Path

import numpy as np
import torch

import nmod
from nmod.core.config import read_yaml
from nmod_nlp import recipe
from nmod_nlp.data.intent_slot import INTENTS_FILE, SLOTS_FILE, read_label_dict
from nmod_nlp.data.token_classification import BertTokenClassificationInferDataLayer
from nmod_nlp.modules.heads import JointIntentSlotClassifier

QUERIES = ["what is the weather in paris tomorrow", "book a flight to tokyo next monday", "play some adele",
           "wake me up at seven am"]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work_dir", "--run_dir", dest="run_dir", default="work_dir/intent_slot",
                   help="the --work_dir of a training run")
    p.add_argument("--checkpoint_dir", help="the weights to use (default: WORK_DIR/checkpoints)")
    p.add_argument("--queries", "--query", action="append", help="a query (repeat the flag for several)")
    p.add_argument("--batch_size", type=int, default=32)
    args = p.parse_args(argv)
    args.queries = args.queries or QUERIES
    args.checkpoint_dir = args.checkpoint_dir or str(Path(args.run_dir) / "checkpoints")
    for path in (Path(args.run_dir) / "args.yaml", Path(args.run_dir) / INTENTS_FILE, Path(args.run_dir) / SLOTS_FILE,
                 Path(args.checkpoint_dir)):
        if not path.exists():
            p.error(f"{path}: no such file; --work_dir must be the --work_dir of a joint_intent_slot_with_bert.py run")
    return args


def main(argv=None) -> list[dict]:
    args = parse_args(argv)
    run = Path(args.run_dir)
    trained = argparse.Namespace(**read_yaml(run / "args.yaml")["arguments"])  # the run's resolved flags
    intent_names, slot_names = read_label_dict(run / INTENTS_FILE), read_label_dict(run / SLOTS_FILE)
    nf = nmod.NeuralModuleFactory(random_seed=trained.seed)

    pooled = getattr(trained, "head", "mlp") == "pooler"  # runs before --head read [CLS]
    encoder = recipe.build_encoder(trained, add_pooler=pooled)
    tokenizer = recipe.build_tokenizer(trained)
    classifier = JointIntentSlotClassifier(encoder.hidden_size, num_intents=len(intent_names),
                                           num_slots=len(slot_names),
                                           intent_num_layers=getattr(trained, "num_output_layers", None) or 2,
                                           dropout=trained.fc_dropout, pooled=pooled)
    layer = BertTokenClassificationInferDataLayer(args.queries, tokenizer=tokenizer,
                                                  max_seq_length=trained.max_seq_length, batch_size=args.batch_size)
    batch = layer()
    encoded = encoder(input_ids=batch.input_ids, token_type_ids=batch.input_type_ids, attention_mask=batch.input_mask)
    if pooled:
        logits = classifier(hidden_states=encoded.hidden_states, pooled_output=encoded.pooled_output)
    else:
        logits = classifier(hidden_states=encoded)
    intent_batches, slot_batches, mask_batches = nf.infer(
        [logits.intent_logits, logits.slot_logits, batch.subtokens_mask], checkpoint_dir=args.checkpoint_dir)

    # Windows follow the queries in order; a query split into several windows takes its first window's intent.
    window_intents = torch.cat([b.argmax(-1) for b in intent_batches]).numpy()
    word_slots = np.concatenate([s.argmax(-1)[m.bool()].numpy() for s, m in zip(slot_batches, mask_batches)])
    first_window = np.searchsorted(layer.features.sentence_index, np.arange(len(args.queries)))
    ends = np.cumsum(layer.words_per_sentence)
    results = []
    for q, query in enumerate(args.queries):
        slots = [slot_names[i] for i in word_slots[ends[q] - layer.words_per_sentence[q]:ends[q]]]
        results.append({"query": query, "intent": intent_names[window_intents[first_window[q]]], "slots": slots})
        print(f"Query: {query}\tintent: {results[-1]['intent']}\tslots: {' '.join(slots)}")
    return results


if __name__ == "__main__":
    recipe.run(main)
