"""Fine-tune a pretrained BERT-family encoder (Megatron-LM BERT above all) on a GLUE task.

NeMo 0.11's command works unchanged, Megatron flags included:

    python glue_benchmark_with_bert.py --data_dir glue_data/MRPC --task_name mrpc \\
        --pretrained_model_name megatron-uncased --bert_config config.json \\
        --bert_checkpoint model_optim_rng.pt --vocab_file vocab.txt --do_lower_case

Tasks: cola, sst-2, mrpc, sts-b (regression), qqp, mnli (dev_matched and dev_mismatched, reported
apart), qnli, rte, wnli. With no arguments it fine-tunes the pretrained MiniLM BERT on the small
SST-2-format sample shipped with nmod_nlp and prints the metric before and after.
Several processes: `torchrun --nproc_per_node N glue_benchmark_with_bert.py ...`.
"""
import argparse
from pathlib import Path

import torch

import nmod_nlp
from nmod import NeuralGraph, OperationMode
from nmod_nlp import recipe
from nmod_nlp.callbacks import classification_evaluator_callback
from nmod_nlp.data.glue import (
    GLUE_TASKS,
    GlueClassificationDataLayer,
    GlueRegressionDataLayer,
    get_task,
    normalize_task_name,
    write_glue_predictions,
)
from nmod_nlp.metrics import glue_metrics
from nmod_nlp.modules.heads import SequenceClassifier, SequenceRegression
from nmod_nlp.modules.losses import CrossEntropyLoss, MSELoss
from nmod_nlp.ports import encoder_inputs

SAMPLES = Path(nmod_nlp.__file__).parent / "data" / "glue" / "samples"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data_dir", help="the task's GLUE folder (train.tsv, dev.tsv; MNLI: dev_matched.tsv ...)")
    data.add_argument("--task_name", type=_task_name, help=f"one of {', '.join(GLUE_TASKS)}")
    data.add_argument("--max_seq_length", type=recipe.number(int, low=8), default=128,
                      help="sub-tokens per example, [CLS] and [SEP]s included; longer ones are truncated (counted)")
    recipe.add_data_cache_args(data)
    recipe.add_encoder_args(p)
    head = p.add_argument_group("head")
    recipe.add_sequence_head_args(head)
    head.add_argument("--fc_dropout", type=recipe.number(float, low=0.0, high=1.0, high_open=True), default=0.1,
                      help="dropout before the classifier head")
    recipe.add_run_args(p, work_dir="work_dir/glue", modes=("train_eval", "train", "eval", "test"),
                        mode_help="test writes predictions for the task's test.tsv (no labels needed)")
    # NeMo 0.11's GLUE defaults.
    p.set_defaults(optimizer="adam", lr=5e-5, lr_warmup_proportion=0.1, weight_decay=0.0, num_epochs=3,
                   batch_size=8)
    args = recipe.parse_args_with_demo(p, argv, demo_defaults)
    recipe.check_data_args(p, args, [f"{split}.tsv" for split in splits_read(args)] if args.task_name else [],
                           required=("data_dir", "task_name"), eval_needs_checkpoint=False)
    return args


def splits_read(args: argparse.Namespace) -> list[str]:
    """The task's files this mode reads: train, the dev sets, or the test sets."""
    task = get_task(args.task_name)
    return {"train": ["train"], "train_eval": ["train", *task.dev_splits], "eval": list(task.dev_splits),
            "test": list(task.test_splits)}[args.mode]


def _task_name(text: str) -> str:
    try:
        return normalize_task_name(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def demo_defaults(args: argparse.Namespace) -> dict | None:
    """No encoder named: the built-in MiniLM demo; with no data either, the shipped SST-2 sample
    (sized for about a minute on 2 CPU cores)."""
    return recipe.demo_defaults(args, has_data=bool(args.data_dir or args.task_name), data_dir=str(SAMPLES / "SST-2"),
                                task_name="sst-2", lr=1e-4, num_epochs=3, batch_size=16, max_seq_length=64)


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir = Path(args.work_dir)
    kind = f"glue:{args.task_name}"
    recipe.check_run_folder(args, kind)  # before anything is read or written
    nf = recipe.build_factory(args)
    task = get_task(args.task_name)
    regression = task.is_regression

    # Modules: tokenizer -> encoder -> head (the pretrained pooler, else the first token) -> loss.
    encoder, pooled = recipe.build_sequence_encoder(args)  # first: its errors name the flags
    tokenizer = recipe.build_tokenizer(args, encoder)  # its vocabulary must fit the encoder's
    Layer = GlueRegressionDataLayer if regression else GlueClassificationDataLayer
    layers = {split: Layer(args.data_dir, args.task_name, split=split, tokenizer=tokenizer,
                           max_seq_length=args.max_seq_length, batch_size=args.batch_size,
                           shuffle=args.shuffle_data if split == "train" else False, use_cache=not args.no_data_cache,
                           bucket_by_length=args.bucket_by_length and split == "train")
              for split in splits_read(args)}  # every file read and checked before the run folder is opened
    if regression:
        head = SequenceRegression(encoder.hidden_size, num_layers=args.num_output_layers, dropout=args.fc_dropout,
                                  pooled=pooled)
        loss_fn = MSELoss()
    else:
        head = SequenceClassifier(encoder.hidden_size, num_classes=task.num_labels, num_layers=args.num_output_layers,
                                  dropout=args.fc_dropout, log_softmax=False, pooled=pooled)
        loss_fn = CrossEntropyLoss()
    recipe.start_run(args, nf, kind, graph=("head", "num_output_layers"))  # work_dir, logs, args.yaml
    model = recipe.model_graph(encoder, head)  # encoder -> head, built once, nested below

    def task_graph(split: str) -> NeuralGraph:
        """data layer -> model -> loss; outputs: scores ((B,) for STS-B, (B, C) logits), labels, loss."""
        mode = OperationMode.training if split == "train" else OperationMode.evaluation
        with NeuralGraph(operation_mode=mode, name=f"glue_{split}") as graph:
            batch = layers[split]()
            scores = model(**encoder_inputs(batch))
            loss = loss_fn(preds=scores, labels=batch.labels) if regression else loss_fn(logits=scores,
                                                                                         labels=batch.labels)
            graph.outputs.bind([scores, batch.labels, loss], names=["scores", "labels", "loss"])
        return graph

    if args.mode == "test":
        return {"test_predictions": write_test_predictions(args, nf, task, layers, task_graph)}

    evaluators = []
    if args.mode in ("train_eval", "eval"):
        for split in task.dev_splits:  # MNLI: dev_matched and dev_mismatched, reported apart
            out = task_graph(split).output_tensors
            mismatched = split == "dev_mismatched"
            evaluators.append(classification_evaluator_callback(
                out["scores"], out["labels"], lambda preds, gold: glue_metrics(args.task_name, preds, gold),
                output_file=str(work_dir / ("mnli-mm.txt" if mismatched else f"{args.task_name}.txt")),
                regression=regression, name="mismatched" if mismatched else "", **recipe.eval_schedule(args)))

    if args.mode == "eval":
        return recipe.evaluate(f"GLUE {args.task_name}", nf, evaluators, args.checkpoint_dir)

    recipe.train(nf, args, task_graph("train"), evaluators)  # with the loss logger and checkpoints
    recipe.save_model(args, nf, task="glue", modules={"encoder": encoder, "head": head}, tokenizer=tokenizer,
                      labels={} if regression else {"labels": list(task.labels)},
                      extra={"task_name": args.task_name, "max_seq_length": args.max_seq_length})
    return recipe.report_training(f"GLUE {args.task_name}", nf, evaluators)


def write_test_predictions(args, nf, task, layers, task_graph) -> list[str]:
    """GLUE's submission files (``index<TAB>prediction``, label names) for each of the task's test sets."""
    written = []
    for split in task.test_splits:
        (batches,) = nf.infer([task_graph(split).output_tensors["scores"]], checkpoint_dir=args.checkpoint_dir)
        path = Path(args.work_dir) / task.submission_file_name(split)
        if nf.global_rank == 0:
            write_glue_predictions(path, task, layers[split].examples, torch.cat([b.float() for b in batches]).numpy())
            print(f"Wrote {len(layers[split].examples)} predictions to {path}")
        written.append(str(path))
    return written


if __name__ == "__main__":
    recipe.run(main)
