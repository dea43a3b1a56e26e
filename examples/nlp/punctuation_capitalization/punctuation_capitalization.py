"""Fine-tune a pretrained BERT-family encoder (Megatron-LM BERT above all) to restore punctuation and
capitalization: two token heads on one encoder, two cross-entropy losses, one weighted sum.

NeMo 0.11's command works unchanged, Megatron flags included:

    python punctuation_capitalization.py --data_dir my_data \\
        --pretrained_model_name megatron-uncased --bert_config config.json \\
        --bert_checkpoint model_optim_rng.pt --vocab_file vocab.txt --do_lower_case

`--data_dir` holds `text_train.txt` + `labels_train.txt` and `text_dev.txt` + `labels_dev.txt`: one
lower-cased text per line without punctuation and, on the matching line, a two-character label per
word: the mark that follows it (`O , . ?`), then `U` (capitalized) or `O`. Each evaluation prints a
report per head. The label ids (`O` first, then sorted) go to `work_dir/punct_label_ids.csv` and
`capit_label_ids.csv`, which eval, resumed runs and `punctuation_capitalization_infer.py` reuse.
With no arguments it fine-tunes the pretrained MiniLM BERT on the small sample shipped with
nmod_nlp and prints the scores before and after.
Several processes: `torchrun --nproc_per_node N punctuation_capitalization.py ...`.
"""
import argparse
from pathlib import Path
from typing import Optional

import nmod_nlp
from nmod import NeuralGraph, OperationMode
from nmod_nlp import recipe
from nmod_nlp.callbacks import token_classification_evaluator_callback
from nmod_nlp.callbacks.combined import combined_evaluator_callback
from nmod_nlp.data.punctuation_capitalization import CAPIT_LABEL_IDS_FILE, PUNCT_LABEL_IDS_FILE, PunctCapitDataLayer
from nmod_nlp.data.text_classification import class_weights
from nmod_nlp.data.token_classification import write_label_ids
from nmod_nlp.modules.heads import PunctCapitTokenClassifier
from nmod_nlp.modules.losses import CrossEntropyLoss, LossAggregator
from nmod_nlp.ports import encoder_inputs

SAMPLE = Path(nmod_nlp.__file__).parent / "data" / "punctuation_capitalization" / "samples"
HEADS = ("punct", "capit")
#: ``--head``: ``linear`` is one Linear per head (dropout 0.1 before both), as transformers' token
#: classifiers; ``mlp`` is NeMo 0.11's. On real text the linear heads learn punctuation where NeMo's
#: 3-layer MLP does not (docs/accuracy.md, "Punctuation, capitalization and slots").
PUNCT_CAPIT_HEADS = {"linear": {"punct_num_fc_layers": 1, "capit_num_fc_layers": 1},
                     "mlp": {"punct_num_fc_layers": 3, "capit_num_fc_layers": 2}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data_dir", help="folder with text_{train,dev}.txt and labels_{train,dev}.txt")
    recipe.add_token_data_args(data, none_help="no punctuation / lower case (id 0 in both heads)", what="texts")
    data.add_argument("--num_samples", type=recipe.optional_number(int), default=None,
                      help="use the first N training texts (-1: all)")
    recipe.add_encoder_args(p)
    head = p.add_argument_group("heads")
    head.add_argument("--head", default="linear", choices=sorted(PUNCT_CAPIT_HEADS),
                      help="linear: one Linear per head, as transformers' token classifiers; mlp: NeMo 0.11's MLPs "
                           "(3 layers for punctuation, which learns far less even in NeMo's budget, 2 for "
                           "capitalization: docs/accuracy.md)")
    head.add_argument("--punct_num_fc_layers", type=recipe.optional_number(int), default=None,
                      help="Linear layers of the punctuation head (default: the --head's)")
    head.add_argument("--capit_num_fc_layers", type=recipe.optional_number(int), default=None,
                      help="Linear layers of the capitalization head (default: the --head's)")
    head.add_argument("--fc_dropout", type=recipe.number(float, low=0.0, high=1.0, high_open=True), default=0.1)
    head.add_argument("--punct_loss_weight", type=recipe.number(float, low=0.0, high=1.0), default=0.5,
                      help="loss = w * punctuation loss + (1 - w) * capitalization loss")
    head.add_argument("--use_weighted_loss_punct", action="store_true",
                      help="weigh each punctuation mark by the inverse of its frequency in the training words")
    recipe.add_run_args(p, work_dir="work_dir/punctuation_capitalization",
                        mode_help="eval scores the dev set with the weights in --checkpoint_dir")
    # NeMo 0.11's punctuation defaults.
    p.set_defaults(optimizer="adam", lr=2e-5, lr_warmup_proportion=0.1, weight_decay=0.0, num_epochs=5,
                   batch_size=8)
    args = recipe.parse_args_with_demo(p, argv, demo_defaults)
    recipe.apply_head_shape(args, PUNCT_CAPIT_HEADS)  # what the run uses goes to args.yaml
    recipe.check_data_args(p, args, [f"{side}_{split}.txt" for split in recipe.mode_splits(args.mode, "train", "dev")
                                     for side in ("text", "labels")])
    return args


def demo_defaults(args: argparse.Namespace) -> Optional[dict]:
    """No encoder named: the built-in MiniLM demo; with no data either, the shipped sample, sized for
    about a minute on 2 CPU cores: a higher lr for the fresh heads, short windows, and, as punctuation
    marks are rare next to "no mark", the marks weighed up."""
    return recipe.demo_defaults(args, has_data=bool(args.data_dir), data_dir=str(SAMPLE), lr=5e-4, num_epochs=6,
                                batch_size=16, max_seq_length=64, train_step_freq=10, use_weighted_loss_punct=True)


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir, data_dir = Path(args.work_dir), Path(args.data_dir)
    recipe.check_run_folder(args, "punctuation_capitalization")  # before anything is read or written
    nf = recipe.build_factory(args)

    # Modules: tokenizer -> encoder -> two token heads -> two masked cross-entropies -> weighted sum.
    encoder = recipe.build_encoder(args)  # first: its errors name the flags a Megatron model needs
    tokenizer = recipe.build_tokenizer(args, encoder)  # its vocabulary must fit the encoder's
    # The trained run's label ids (eval, resume), else the data folder's (NeMo's "Using the provided
    # label_ids dictionary"), else the training set's.
    punct_ids, capit_ids = recipe.trained_label_ids(args, [PUNCT_LABEL_IDS_FILE, CAPIT_LABEL_IDS_FILE],
                                                    also_in=[data_dir]) or (None, None)

    def data_layer(split: str, train: bool, punct_ids, capit_ids) -> PunctCapitDataLayer:
        return PunctCapitDataLayer(
            str(data_dir / f"text_{split}.txt"), str(data_dir / f"labels_{split}.txt"), tokenizer=tokenizer,
            max_seq_length=args.max_seq_length, punct_label_ids=punct_ids, capit_label_ids=capit_ids,
            pad_label=args.none_label, ignore_extra_tokens=args.ignore_extra_tokens,
            ignore_start_end=args.ignore_start_end, num_samples=(args.num_samples or -1) if train else -1,
            batch_size=args.batch_size, shuffle=args.shuffle_data if train else False, use_cache=not args.no_data_cache,
            bucket_by_length=args.bucket_by_length and train)

    train_layer = data_layer("train", True, punct_ids, capit_ids) if args.mode != "eval" else None
    if train_layer is not None:  # the training set's ids, for the dev set and every later run
        punct_ids, capit_ids = train_layer.punct_label_ids, train_layer.capit_label_ids
    eval_layer = data_layer("dev", False, punct_ids, capit_ids) if args.mode != "train" else None
    label_names = {"punct": sorted(punct_ids, key=punct_ids.get), "capit": sorted(capit_ids, key=capit_ids.get)}

    classifier = PunctCapitTokenClassifier(
        encoder.hidden_size, punct_num_classes=len(punct_ids), capit_num_classes=len(capit_ids),
        punct_num_layers=args.punct_num_fc_layers, capit_num_layers=args.capit_num_fc_layers,
        dropout=args.fc_dropout, log_softmax=False)
    punct_weights = None
    if args.use_weighted_loss_punct and train_layer is not None:  # most words are followed by no mark
        punct_weights = class_weights(train_layer.word_label_ids("punct_labels"), len(punct_ids))
    punct_loss_fn = CrossEntropyLoss(logits_ndim=3, weight=punct_weights)
    capit_loss_fn = CrossEntropyLoss(logits_ndim=3)
    aggregator = LossAggregator(num_inputs=2, weights=[args.punct_loss_weight, 1.0 - args.punct_loss_weight])
    recipe.start_run(args, nf, "punctuation_capitalization", graph=("punct_num_fc_layers", "capit_num_fc_layers"))
    if nf.global_rank == 0:  # the run's own label ids, for eval, resume and inference
        write_label_ids(work_dir / PUNCT_LABEL_IDS_FILE, punct_ids)
        write_label_ids(work_dir / CAPIT_LABEL_IDS_FILE, capit_ids)

    model = recipe.model_graph(encoder, classifier)  # encoder -> both heads, built once, nested below

    def task_graph(layer: PunctCapitDataLayer, mode: OperationMode) -> NeuralGraph:
        """data layer -> model -> two masked losses -> weighted sum; outputs: each head's logits and
        labels, subtokens_mask, loss."""
        with NeuralGraph(operation_mode=mode, name="punctuation_capitalization") as graph:
            batch = layer()
            punct_logits, capit_logits = model(**encoder_inputs(batch))
            punct_loss = punct_loss_fn(logits=punct_logits, labels=batch.punct_labels, loss_mask=batch.loss_mask)
            capit_loss = capit_loss_fn(logits=capit_logits, labels=batch.capit_labels, loss_mask=batch.loss_mask)
            graph.outputs.bind([punct_logits, batch.punct_labels, capit_logits, batch.capit_labels,
                                batch.subtokens_mask, aggregator(loss_1=punct_loss, loss_2=capit_loss)],
                               names=["punct_logits", "punct_labels", "capit_logits", "capit_labels",
                                      "subtokens_mask", "loss"])
        return graph

    evaluators = []
    if eval_layer is not None:
        out = task_graph(eval_layer, OperationMode.evaluation).output_tensors
        heads = [token_classification_evaluator_callback(
            out[f"{head}_logits"], out[f"{head}_labels"], out["subtokens_mask"],
            label_names[head], sentences=eval_layer.sentences, predictions_file=work_dir / f"{head}_predictions.txt",
            name=head, print_report=nf.global_rank == 0, **recipe.eval_schedule(args)) for head in HEADS]
        evaluators.append(combined_evaluator_callback(heads))  # one pass over the dev set for both heads

    if args.mode == "eval":
        return recipe.evaluate("Punctuation and capitalization", nf, evaluators, args.checkpoint_dir)

    recipe.train(nf, args, task_graph(train_layer, OperationMode.training), evaluators)  # with the loss logger and checkpoints
    recipe.save_model(args, nf, task="punctuation_capitalization", modules={"encoder": encoder, "head": classifier},
                      tokenizer=tokenizer, labels=label_names, extra={"max_seq_length": args.max_seq_length,
                                                                      "none_label": args.none_label})
    return recipe.report_training("Punctuation and capitalization", nf, evaluators)


if __name__ == "__main__":
    recipe.run(main)
