"""Fine-tune a pretrained BERT-family encoder (Megatron-LM BERT above all) for named-entity recognition.

NeMo 0.11's command works unchanged, Megatron flags included:

    python token_classification.py --data_dir conll2003 \\
        --pretrained_model_name megatron-uncased --bert_config config.json \\
        --bert_checkpoint model_optim_rng.pt --vocab_file vocab.txt --do_lower_case

`--data_dir` holds `text_train.txt` + `labels_train.txt` and `text_dev.txt` + `labels_dev.txt`: one
sentence per line (space-separated words) and, on the matching line, one label per word
(`import_from_iob_format.py` writes them from a CoNLL-2003 file). Each evaluation prints NeMo's
token-level report and conlleval's entity-level scores, and writes `work_dir/predictions.conll`.
The label ids (none label first, the rest sorted) go to `work_dir/label_ids.csv`, which eval,
resumed runs and `token_classification_infer.py` reuse. With no arguments it fine-tunes the
pretrained MiniLM BERT on the small sample shipped with nmod_nlp and prints the scores before and after.
Several processes: `torchrun --nproc_per_node N token_classification.py ...`.
"""
import argparse
from pathlib import Path
from typing import Optional

import nmod_nlp
from nmod import NeuralGraph, OperationMode
from nmod_nlp import recipe
from nmod_nlp.callbacks import token_classification_evaluator_callback
from nmod_nlp.data.text_classification import class_weights
from nmod_nlp.data.token_classification import (
    LABEL_IDS_FILE,
    BertTokenClassificationDataLayer,
    build_label_ids,
    read_token_classification_files,
    write_label_ids,
)
from nmod_nlp.metrics import is_iob_tagging, save_confusion_matrix
from nmod_nlp.modules.heads import TokenClassifier
from nmod_nlp.modules.losses import CrossEntropyLoss
from nmod_nlp.ports import encoder_inputs

SAMPLE = Path(nmod_nlp.__file__).parent / "data" / "token_classification" / "samples"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--data_dir", help="folder with text_{train,dev}.txt and labels_{train,dev}.txt")
    recipe.add_token_data_args(data)
    recipe.add_encoder_args(p)
    head = p.add_argument_group("head")
    head.add_argument("--head", default="linear", choices=sorted(recipe.TOKEN_HEADS),
                      help="linear: dropout 0.1 and one Linear, transformers' head; mlp: NeMo 0.11's 2-layer MLP with "
                           "dropout 0.5 (it needs NeMo's longer budget to learn; docs/accuracy.md)")
    head.add_argument("--num_fc_layers", type=recipe.optional_number(int), default=None,
                      help="Linear layers of the head (default: the --head's)")
    head.add_argument("--fc_dropout", type=recipe.number(float, low=0.0, high=1.0, high_open=True), default=None,
                      help="dropout before the head (default: the --head's)")
    head.add_argument("--use_weighted_loss", action="store_true",
                      help="weigh each label by the inverse of its frequency in the training words")
    recipe.add_run_args(p, work_dir="work_dir/token_classification",
                        mode_help="eval scores the dev set with the weights in --checkpoint_dir")
    # NeMo 0.11's NER defaults.
    p.set_defaults(optimizer="adam", lr=5e-5, lr_warmup_proportion=0.1, weight_decay=0.01, num_epochs=5,
                   batch_size=8, train_step_freq=250)
    args = recipe.parse_args_with_demo(p, argv, demo_defaults)
    recipe.apply_head_shape(args, recipe.TOKEN_HEADS)  # what the run uses goes to args.yaml
    recipe.check_data_args(p, args, [f"{side}_{split}.txt" for split in recipe.mode_splits(args.mode, "train", "dev")
                                     for side in ("text", "labels")])
    return args


def demo_defaults(args: argparse.Namespace) -> Optional[dict]:
    """No encoder named: the built-in MiniLM demo; with no data either, the shipped sample, sized for
    about a minute on 2 CPU cores: a higher lr for the fresh head, short windows, and no checkpoint
    but the last."""
    return recipe.demo_defaults(args, has_data=bool(args.data_dir), data_dir=str(SAMPLE), lr=5e-4, num_epochs=2,
                                batch_size=8, max_seq_length=32, train_step_freq=10, save_epoch_freq=None)


def setup_label_ids(args: argparse.Namespace, train_files: tuple[Path, Path]) -> dict:
    """The run's {label: id}: a trained run's own (eval, resume), else built from the training labels."""
    saved = recipe.trained_label_ids(args, [LABEL_IDS_FILE])
    if saved is not None:
        return saved[0]
    return build_label_ids(read_token_classification_files(*train_files).labels, args.none_label)


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir, data_dir = Path(args.work_dir), Path(args.data_dir)
    recipe.check_run_folder(args, "ner")  # before anything is read or written
    nf = recipe.build_factory(args)
    train_files = (data_dir / "text_train.txt", data_dir / "labels_train.txt")
    dev_files = (data_dir / "text_dev.txt", data_dir / "labels_dev.txt")

    # Modules: tokenizer -> encoder -> token classifier -> masked cross-entropy.
    encoder = recipe.build_encoder(args)  # first: its errors name the flags a Megatron model needs
    tokenizer = recipe.build_tokenizer(args, encoder)  # its vocabulary must fit the encoder's
    label_ids = setup_label_ids(args, train_files)

    def data_layer(files: tuple[Path, Path], train: bool) -> BertTokenClassificationDataLayer:
        return BertTokenClassificationDataLayer(
            str(files[0]), str(files[1]), tokenizer=tokenizer, max_seq_length=args.max_seq_length,
            label_ids=label_ids, pad_label=args.none_label, ignore_extra_tokens=args.ignore_extra_tokens,
            ignore_start_end=args.ignore_start_end, batch_size=args.batch_size,
            shuffle=args.shuffle_data if train else False, use_cache=not args.no_data_cache,
            bucket_by_length=args.bucket_by_length and train)

    train_layer = data_layer(train_files, True) if args.mode != "eval" else None
    eval_layer = data_layer(dev_files, False) if args.mode != "train" else None
    label_names = sorted(label_ids, key=label_ids.get)
    classifier = TokenClassifier(encoder.hidden_size, num_classes=len(label_names), num_layers=args.num_fc_layers,
                                 dropout=args.fc_dropout, log_softmax=False)
    weights = None
    if args.use_weighted_loss and train_layer is not None:
        weights = class_weights(train_layer.word_label_ids(), len(label_names))
    loss_fn = CrossEntropyLoss(logits_ndim=3, weight=weights)
    recipe.start_run(args, nf, "ner", graph=("num_fc_layers",))  # inputs checked: work_dir, logs, args.yaml
    if nf.global_rank == 0:  # the run's own label ids, for eval, resume and inference
        write_label_ids(work_dir / LABEL_IDS_FILE, label_ids)

    model = recipe.model_graph(encoder, classifier)  # encoder -> classifier, built once, nested below

    def task_graph(layer: BertTokenClassificationDataLayer, mode: OperationMode) -> NeuralGraph:
        """data layer -> model -> masked loss; outputs: logits (B, T, C), labels, subtokens_mask, loss."""
        with NeuralGraph(operation_mode=mode, name="ner") as graph:
            batch = layer()
            logits = model(**encoder_inputs(batch))
            loss = loss_fn(logits=logits, labels=batch.labels, loss_mask=batch.loss_mask)
            graph.outputs.bind([logits, batch.labels, batch.subtokens_mask, loss],
                               names=["logits", "labels", "subtokens_mask", "loss"])
        return graph

    evaluators = []
    if eval_layer is not None:
        out = task_graph(eval_layer, OperationMode.evaluation).output_tensors
        evaluators.append(token_classification_evaluator_callback(
            out["logits"], out["labels"], out["subtokens_mask"], label_names, sentences=eval_layer.sentences,
            predictions_file=work_dir / "predictions.conll",
            entity_level=is_iob_tagging(label_names, args.none_label),
            print_report=nf.global_rank == 0,
            on_results=lambda preds, gold: save_confusion_matrix(preds, gold, len(label_names),
                                                                 work_dir / "confusion_matrix.tsv", label_names),
            **recipe.eval_schedule(args)))

    if args.mode == "eval":
        return recipe.evaluate("NER", nf, evaluators, args.checkpoint_dir)

    recipe.train(nf, args, task_graph(train_layer, OperationMode.training), evaluators)  # with the loss logger and checkpoints
    recipe.save_model(args, nf, task="ner", modules={"encoder": encoder, "head": classifier}, tokenizer=tokenizer,
                      labels={"labels": label_names},
                      extra={"max_seq_length": args.max_seq_length, "none_label": args.none_label})
    return recipe.report_training("NER", nf, evaluators)


if __name__ == "__main__":
    recipe.run(main)
