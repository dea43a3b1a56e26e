"""Fine-tune a pretrained BERT-family encoder (Megatron-LM BERT above all) for joint intent detection and
slot filling: an intent head on the pretrained pooler (or the first token), a slot head on every token,
one weighted loss.

NeMo 0.11's command works unchanged, Megatron flags included:

    python joint_intent_slot_with_bert.py --data_dir my_nlu_data \\
        --pretrained_model_name megatron-uncased --bert_config config.json \\
        --bert_checkpoint model_optim_rng.pt --vocab_file vocab.txt --do_lower_case

`--data_dir` holds `dict.intents.csv` and `dict.slots.csv` (one label per line, the line index is the
id), `{prefix}.tsv` (a `sentence<TAB>label` header, then a query and its intent id) and
`{prefix}_slots.tsv` (the slot id of each word, space-separated), for `--train_file_prefix` (train)
and `--eval_file_prefix` (test). Each evaluation prints the intent and slot reports; both dict files
are copied to `work_dir`, which eval and `joint_intent_slot_infer.py` reuse. With no arguments it
fine-tunes the pretrained MiniLM BERT on the small sample shipped with nmod_nlp and prints the scores
before and after.
Several processes: `torchrun --nproc_per_node N joint_intent_slot_with_bert.py ...`.
"""
import argparse
from pathlib import Path
from typing import Optional

import nmod_nlp
from nmod import NeuralGraph, OperationMode
from nmod_nlp import recipe
from nmod_nlp.callbacks import classification_evaluator_callback, token_classification_evaluator_callback
from nmod_nlp.callbacks.combined import combined_evaluator_callback
from nmod_nlp.data.intent_slot import INTENTS_FILE, SLOTS_FILE, IntentSlotDataLayer
from nmod_nlp.data.text_classification import class_weights
from nmod_nlp.data.token_classification import write_label_ids
from nmod_nlp.metrics import classification_report, format_report, is_iob_tagging
from nmod_nlp.modules.heads import JointIntentSlotClassifier
from nmod_nlp.modules.losses import CrossEntropyLoss, LossAggregator
from nmod_nlp.ports import encoder_inputs

SAMPLE = Path(nmod_nlp.__file__).parent / "data" / "intent_slot" / "samples"
#: ``--head`` -> the slot head's default depth: one Linear, as transformers' token classifiers, or NeMo
#: 0.11's 2-layer MLP with ``--head mlp``.
SLOT_HEADS = {"pooler": {"slot_num_fc_layers": 1}, "mlp": {"slot_num_fc_layers": 2}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data_dir",
                      help="folder with dict.intents.csv, dict.slots.csv, {prefix}.tsv and {prefix}_slots.tsv")
    data.add_argument("--train_file_prefix", default="train")
    data.add_argument("--eval_file_prefix", default="test")
    data.add_argument("--num_train_samples", type=recipe.optional_number(int), default=None,
                      help="use the first N training queries (-1: all)")
    data.add_argument("--num_eval_samples", type=recipe.optional_number(int), default=None,
                      help="use the first N eval queries (-1: all)")
    recipe.add_token_data_args(data, none_label="--none_slot_label", none_help="the slot of words outside any slot",
                               max_seq_length=50, what="queries")
    data.add_argument("--pad_label", type=_slot_name_or_id, default=None,
                      help="the slot of [CLS], [SEP] and padding: a slot name, or its id as NeMo's flag took it "
                           "(default, or -1: --none_slot_label)")
    recipe.add_encoder_args(p)
    head = p.add_argument_group("heads")
    recipe.add_sequence_head_args(head)  # --head and --num_output_layers of the intent head
    head.add_argument("--slot_num_fc_layers", type=recipe.optional_number(int), default=None,
                      help="Linear layers of the slot head (default: 1, as transformers' token classifiers; 2, "
                           "NeMo 0.11's MLP, with --head mlp; the MLP needs a longer budget: docs/accuracy.md)")
    head.add_argument("--fc_dropout", type=recipe.number(float, low=0.0, high=1.0, high_open=True), default=0.1)
    head.add_argument("--intent_loss_weight", type=recipe.number(float, low=0.0, high=1.0), default=0.6,
                      help="loss = w * intent loss + (1 - w) * slot loss")
    head.add_argument("--class_balancing", default="regular", choices=["regular", "weighted_loss"],
                      help="weighted_loss weighs intents and slots by the inverse of their training frequency")
    recipe.add_run_args(p, work_dir="work_dir/intent_slot",
                        mode_help="eval scores the eval set with the weights in --checkpoint_dir")
    # NeMo 0.11's joint intent/slot defaults.
    p.set_defaults(optimizer="adam", lr=2e-5, lr_warmup_proportion=0.1, weight_decay=0.01, num_epochs=10,
                   batch_size=128)
    args = recipe.parse_args_with_demo(p, argv, demo_defaults)
    recipe.apply_head_shape(args, SLOT_HEADS)  # from the --head asked for, not the pooler fallback's: args.yaml
    prefixes = recipe.mode_splits(args.mode, args.train_file_prefix, args.eval_file_prefix)
    recipe.check_data_args(p, args, [INTENTS_FILE, SLOTS_FILE] + [
        name for prefix in prefixes for name in (f"{prefix}.tsv", f"{prefix}_slots.tsv")])
    return args


def _slot_name_or_id(text: str) -> Optional[str | int]:
    """NeMo's --pad_label was an id (-1: the none slot's); a slot name is read as one."""
    try:
        return None if int(text) == -1 else int(text)
    except ValueError:
        return text


def demo_defaults(args: argparse.Namespace) -> Optional[dict]:
    """No encoder named: the built-in MiniLM demo; with no data either, the shipped sample, sized for
    under a minute on 2 CPU cores: a higher lr for the fresh heads, small batches, and class weights,
    since most words carry no slot (slot macro F1 0.92 after 8 epochs, 0.91 without them; with NeMo's
    2-layer slot MLP, --slot_num_fc_layers 2, they were what lifted it from 0.74)."""
    return recipe.demo_defaults(args, has_data=bool(args.data_dir), data_dir=str(SAMPLE), lr=5e-4, num_epochs=8,
                                batch_size=16, train_step_freq=10, class_balancing="weighted_loss")


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir = Path(args.work_dir)
    recipe.check_run_folder(args, "intent_slot")  # before anything is read or written
    nf = recipe.build_factory(args)

    # Modules: tokenizer -> encoder -> intent (pooler, else [CLS]) + slot heads -> two cross-entropies -> weighted sum.
    encoder, pooled = recipe.build_sequence_encoder(args)  # first: its errors name the flags
    tokenizer = recipe.build_tokenizer(args, encoder)  # its vocabulary must fit the encoder's

    def data_layer(prefix: str, num_samples, train: bool) -> IntentSlotDataLayer:
        return IntentSlotDataLayer(
            args.data_dir, prefix, tokenizer=tokenizer, max_seq_length=args.max_seq_length,
            none_slot_label=args.none_slot_label, pad_label=args.pad_label,
            ignore_extra_tokens=args.ignore_extra_tokens, ignore_start_end=args.ignore_start_end,
            num_samples=num_samples or -1, batch_size=args.batch_size,
            shuffle=args.shuffle_data if train else False, use_cache=not args.no_data_cache,
            bucket_by_length=args.bucket_by_length and train)

    train_layer = data_layer(args.train_file_prefix, args.num_train_samples, True) if args.mode != "eval" else None
    eval_layer = data_layer(args.eval_file_prefix, args.num_eval_samples, False) if args.mode != "train" else None
    layer = train_layer or eval_layer
    intent_names, slot_names = layer.intent_names, layer.slot_names

    classifier = JointIntentSlotClassifier(encoder.hidden_size, num_intents=len(intent_names),
                                           num_slots=len(slot_names), intent_num_layers=args.num_output_layers,
                                           slot_num_layers=args.slot_num_fc_layers, dropout=args.fc_dropout,
                                           pooled=pooled)
    intent_weights = slot_weights = None
    if args.class_balancing == "weighted_loss" and train_layer is not None:
        intent_weights = class_weights(train_layer.intents, len(intent_names))
        slot_weights = class_weights(train_layer.word_label_ids("slots"), len(slot_names))
    intent_loss_fn = CrossEntropyLoss(logits_ndim=2, weight=intent_weights)
    slot_loss_fn = CrossEntropyLoss(logits_ndim=3, weight=slot_weights)
    aggregator = LossAggregator(num_inputs=2, weights=[args.intent_loss_weight, 1.0 - args.intent_loss_weight])
    recipe.start_run(args, nf, "intent_slot",  # inputs checked: work_dir, logs, args.yaml
                     graph=("head", "num_output_layers", "slot_num_fc_layers"))
    if nf.global_rank == 0:  # the run's own copy, for eval and inference from its folder
        write_label_ids(work_dir / INTENTS_FILE, {n: i for i, n in enumerate(intent_names)})
        write_label_ids(work_dir / SLOTS_FILE, {n: i for i, n in enumerate(slot_names)})

    model = recipe.model_graph(encoder, classifier)  # encoder -> both heads, built once, nested below

    def task_graph(layer: IntentSlotDataLayer, mode: OperationMode) -> NeuralGraph:
        """data layer -> model -> intent and masked slot losses -> weighted sum; outputs: each head's
        logits and labels, subtokens_mask, loss."""
        with NeuralGraph(operation_mode=mode, name="intent_slot") as graph:
            batch = layer()
            intent_logits, slot_logits = model(**encoder_inputs(batch))
            intent_loss = intent_loss_fn(logits=intent_logits, labels=batch.intents)
            slot_loss = slot_loss_fn(logits=slot_logits, labels=batch.slots, loss_mask=batch.loss_mask)
            graph.outputs.bind([intent_logits, batch.intents, slot_logits, batch.slots, batch.subtokens_mask,
                                aggregator(loss_1=intent_loss, loss_2=slot_loss)],
                               names=["intent_logits", "intents", "slot_logits", "slots", "subtokens_mask", "loss"])
        return graph

    evaluators = []
    if eval_layer is not None:
        out = task_graph(eval_layer, OperationMode.evaluation).output_tensors
        schedule = recipe.eval_schedule(args)

        def intent_metrics(preds, gold) -> dict:
            report = classification_report(preds, gold, len(intent_names), intent_names)
            if nf.global_rank == 0:
                print(format_report(report))
            return {"accuracy": report["accuracy"], "macro_f1": report["macro"]["f1"]}

        intents = classification_evaluator_callback(
            out["intent_logits"], out["intents"], intent_metrics, output_file=str(work_dir / "intent_predictions.txt"),
            name="intent", **schedule)
        slots = token_classification_evaluator_callback(
            out["slot_logits"], out["slots"], out["subtokens_mask"], slot_names, sentences=eval_layer.sentences,
            predictions_file=work_dir / "slot_predictions.txt", name="slot",
            entity_level=is_iob_tagging(slot_names, args.none_slot_label), print_report=nf.global_rank == 0,
            **schedule)
        evaluators.append(combined_evaluator_callback([intents, slots]))  # one pass over the eval set

    if args.mode == "eval":
        return recipe.evaluate("Intent and slot", nf, evaluators, args.checkpoint_dir)

    recipe.train(nf, args, task_graph(train_layer, OperationMode.training), evaluators)  # with the loss logger and checkpoints
    recipe.save_model(args, nf, task="intent_slot", modules={"encoder": encoder, "head": classifier},
                      tokenizer=tokenizer, labels={"intents": intent_names, "slots": slot_names},
                      extra={"max_seq_length": args.max_seq_length})
    return recipe.report_training("Intent and slot", nf, evaluators)


if __name__ == "__main__":
    recipe.run(main)
