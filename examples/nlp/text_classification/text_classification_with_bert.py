"""Fine-tune a pretrained BERT-family encoder (Megatron-LM BERT above all) for sentence classification.

NeMo 0.11's command works unchanged, Megatron flags included:

    python text_classification_with_bert.py --data_dir my_data \\
        --pretrained_model_name megatron-uncased --bert_config config.json \\
        --bert_checkpoint model_optim_rng.pt --vocab_file vocab.txt --do_lower_case

`--data_dir` holds `train.tsv` and `dev.tsv` (names set by `--train_file_prefix` and
`--eval_file_prefix`): a `sentence<TAB>label` header, then one sentence and its integer label per
line. With no arguments it fine-tunes the pretrained MiniLM BERT on the small sample shipped with
nmod_nlp and prints the accuracy before and after.
Several processes: `torchrun --nproc_per_node N text_classification_with_bert.py ...`.
"""
import argparse
from pathlib import Path

import nmod_nlp
from nmod import NeuralGraph, OperationMode
from nmod_nlp import recipe
from nmod_nlp.callbacks import classification_evaluator_callback
from nmod_nlp.data.text_classification import TextClassificationDataLayer, class_weights
from nmod_nlp.metrics import classification_report, format_report, save_confusion_matrix
from nmod_nlp.modules.heads import SequenceClassifier
from nmod_nlp.modules.losses import CrossEntropyLoss
from nmod_nlp.ports import encoder_inputs

SAMPLE = Path(nmod_nlp.__file__).parent / "data" / "text_classification" / "samples"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data_dir", help="folder with {prefix}.tsv files")
    data.add_argument("--train_file_prefix", default="train")
    data.add_argument("--eval_file_prefix", default="dev")
    data.add_argument("--num_train_samples", type=recipe.optional_number(int), default=None,
                      help="a seeded random subset of N training sentences, kept in file order (-1: all)")
    data.add_argument("--num_eval_samples", type=recipe.optional_number(int), default=None,
                      help="a seeded random subset of N eval sentences (-1: all)")
    data.add_argument("--max_seq_length", type=recipe.number(int, low=4), default=36)
    recipe.add_data_cache_args(data)
    recipe.add_encoder_args(p)
    head = p.add_argument_group("head")
    recipe.add_sequence_head_args(head)
    head.add_argument("--fc_dropout", type=recipe.number(float, low=0.0, high=1.0, high_open=True), default=0.1)
    head.add_argument("--class_balancing", default="None", choices=["None", "weighted_loss"],
                      help="weighted_loss weighs each class by the inverse of its training frequency")
    recipe.add_run_args(p, work_dir="work_dir/text_classification")
    # NeMo 0.11's text-classification defaults.
    p.set_defaults(optimizer="adam", lr=2e-5, lr_warmup_proportion=0.1, weight_decay=0.01, num_epochs=10,
                   batch_size=32, eval_step_freq=100)
    args = recipe.parse_args_with_demo(p, argv, demo_defaults)
    prefixes = recipe.mode_splits(args.mode, args.train_file_prefix, args.eval_file_prefix)
    recipe.check_data_args(p, args, [f"{prefix}.tsv" for prefix in prefixes], eval_needs_checkpoint=False)
    return args


def demo_defaults(args: argparse.Namespace) -> dict | None:
    """No encoder named: the built-in MiniLM demo; with no data either, the shipped sample, sized for a
    minute or two on 2 CPU cores: evaluated per epoch, a higher lr for the fresh head, and class
    weights, since the sample's third class is its rarest (20 %)."""
    return recipe.demo_defaults(args, has_data=bool(args.data_dir), data_dir=str(SAMPLE), lr=1e-4, num_epochs=3,
                                batch_size=16, eval_step_freq=None, class_balancing="weighted_loss")


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir = Path(args.work_dir)
    recipe.check_run_folder(args, "text_classification")  # before anything is read or written
    nf = recipe.build_factory(args)

    # Modules: tokenizer -> encoder -> classifier (the pretrained pooler, else the first token) -> loss.
    encoder, pooled = recipe.build_sequence_encoder(args)  # first: its errors name the flags
    tokenizer = recipe.build_tokenizer(args, encoder)  # its vocabulary must fit the encoder's

    def data_layer(prefix: str, num_samples, train: bool):
        return TextClassificationDataLayer(
            str(Path(args.data_dir) / f"{prefix}.tsv"), tokenizer=tokenizer, max_seq_length=args.max_seq_length,
            num_samples=num_samples or -1, batch_size=args.batch_size, shuffle=args.shuffle_data if train else False,
            use_cache=not args.no_data_cache, bucket_by_length=args.bucket_by_length and train)

    train_layer = data_layer(args.train_file_prefix, args.num_train_samples, True) if args.mode != "eval" else None
    eval_layer = data_layer(args.eval_file_prefix, args.num_eval_samples, False) if args.mode != "train" else None
    num_classes = (train_layer or eval_layer).num_labels
    classifier = SequenceClassifier(encoder.hidden_size, num_classes=num_classes, num_layers=args.num_output_layers,
                                    dropout=args.fc_dropout, log_softmax=False, pooled=pooled)
    weights = None
    if args.class_balancing == "weighted_loss" and train_layer is not None:
        weights = class_weights(train_layer.labels, num_classes)
    loss_fn = CrossEntropyLoss(weight=weights)
    recipe.start_run(args, nf, "text_classification", graph=("head", "num_output_layers"))  # work_dir, logs, args

    model = recipe.model_graph(encoder, classifier)  # encoder -> classifier, built once, nested below

    def task_graph(layer: TextClassificationDataLayer, mode: OperationMode) -> NeuralGraph:
        """data layer -> model -> loss; outputs: logits (B, C), labels, loss."""
        with NeuralGraph(operation_mode=mode, name="text_classification") as graph:
            batch = layer()
            logits = model(**encoder_inputs(batch))
            graph.outputs.bind([logits, batch.labels, loss_fn(logits=logits, labels=batch.labels)],
                               names=["logits", "labels", "loss"])
        return graph

    evaluators = []
    if eval_layer is not None:
        out = task_graph(eval_layer, OperationMode.evaluation).output_tensors

        def metrics(preds, gold) -> dict:
            report = classification_report(preds, gold, num_classes)
            if nf.global_rank == 0:
                print(format_report(report))
            return {"accuracy": report["accuracy"], "macro_f1": report["macro"]["f1"],
                    "micro_f1": report["micro"]["f1"], "weighted_f1": report["weighted"]["f1"]}

        evaluators.append(classification_evaluator_callback(
            out["logits"], out["labels"], metrics, output_file=str(work_dir / "text_classification.txt"),
            on_results=lambda preds, gold: save_confusion_matrix(preds, gold, num_classes,
                                                                 work_dir / "confusion_matrix.tsv"),
            **recipe.eval_schedule(args)))

    if args.mode == "eval":
        return recipe.evaluate("Text classification", nf, evaluators, args.checkpoint_dir)

    recipe.train(nf, args, task_graph(train_layer, OperationMode.training), evaluators)  # with the loss logger and checkpoints
    recipe.save_model(args, nf, task="text_classification", modules={"encoder": encoder, "head": classifier},
                      tokenizer=tokenizer, labels={"labels": [str(i) for i in range(num_classes)]},
                      extra={"max_seq_length": args.max_seq_length})
    return recipe.report_training("Text classification", nf, evaluators)


if __name__ == "__main__":
    recipe.run(main)
