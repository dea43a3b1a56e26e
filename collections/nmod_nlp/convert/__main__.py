"""``python -m nmod_nlp.convert <command>``: nmod models and Megatron-LM checkpoints as transformers folders.

  to-hf           a model folder (encoder + task head) -> a transformers Bert*For* / MegatronBert*For* folder
  megatron-to-hf  a pretrained Megatron-LM BERT checkpoint (any format) -> a transformers ``megatron-bert`` folder
  inspect         what a Megatron BERT checkpoint is: format, iteration, shape, vocabulary, pooler, TP/PP

nmod's own errors (a missing file, a checkpoint that does not fit) print as one line,
``error: <message>``, with exit status 2; ``--debug`` or ``NMOD_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from nmod_nlp.recipe import run


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nmod_nlp.convert", description=__doc__.split("\n\n")[0])
    p.add_argument("--debug", action="store_true", help="show the traceback of nmod's own errors")
    commands = p.add_subparsers(dest="command", required=True, metavar="command")

    t = commands.add_parser("to-hf", help="model folder -> transformers Bert*For* / MegatronBert*For* folder",
                            description="Writes config.json, model.safetensors and the tokenizer files of the "
                                        "transformers class for the folder's encoder and head: *ForQuestionAnswering "
                                        "(SQuAD), *ForTokenClassification, *ForSequenceClassification.")
    t.add_argument("--model_dir", required=True, help="a model folder, as recipes write to <work_dir>/model")
    t.add_argument("--out", required=True, help="folder to write the transformers model into")
    t.add_argument("--near_identity_pooler", action="store_true",
                   help="sequence heads on [CLS] (--head mlp): write a pooler that passes [CLS] through to float32 "
                        "rounding (*ForSequenceClassification always applies one); --head pooler needs none")

    m = commands.add_parser("megatron-to-hf", help="Megatron-LM BERT checkpoint -> transformers megatron-bert folder",
                            description="Writes config.json, model.safetensors and the tokenizer files of a "
                                        "transformers MegatronBertModel (the encoder, and its pooler when the checkpoint "
                                        "has one; no pretraining heads).")
    m.add_argument("--bert_checkpoint", required=True,
                   help="any Megatron BERT checkpoint nmod reads: model_optim_rng.pt, a Megatron or megatron-core save "
                        "folder (torch or torch_dist), a .nemo archive, a NeMo 2 folder, a state dict, a HF folder")
    m.add_argument("--bert_config", default=None,
                   help="Megatron config.json (hidden-size, num-layers, num-attention-heads, max-seq-length); "
                        "optional when the checkpoint records its args")
    m.add_argument("--vocab_file", default=None,
                   help="the WordPiece vocab.txt the model was trained with (optional when the checkpoint carries it: "
                        ".nemo, NeMo 2)")
    m.add_argument("--out", required=True, help="folder to write the transformers model into")
    m.add_argument("--do_lower_case", action=argparse.BooleanOptionalAction, default=None,
                   help="the tokenizer lower-cases (default: the vocab folder's tokenizer_config.json, else yes)")
    m.add_argument("--checkpoint_version", type=float, default=None,
                   help="override the checkpoint_version stored in the checkpoint (its fused QKV row order)")
    m.add_argument("--allow_unsafe_checkpoint", action="store_true",
                   help="unpickle Python objects in the checkpoint: only for a file whose source you trust")
    i = commands.add_parser("inspect", help="what a Megatron BERT checkpoint is (no model is built)",
                            description="Prints the format, iteration, model shape, vocabulary, pooler, tensor- and "
                                        "pipeline-parallel sizes and tensor count of a checkpoint in any format nmod "
                                        "reads, one 'key: value' a line (--json: one JSON object).")
    i.add_argument("path", help="the checkpoint: a file, a folder or a .nemo archive")
    i.add_argument("--json", action="store_true", help="print one JSON object")
    i.add_argument("--allow_unsafe_checkpoint", action="store_true",
                   help="unpickle Python objects in the checkpoint: only for a file whose source you trust")
    return p


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parser().parse_args(argv)
    if args.command == "to-hf":
        from .hf import to_hf

        out, architecture = to_hf(args.model_dir, args.out, args.near_identity_pooler)
        print(f"wrote a transformers {architecture} folder to {out}")
    elif args.command == "megatron-to-hf":
        from .hf import megatron_to_hf

        out = megatron_to_hf(args.out, args.vocab_file, args.bert_checkpoint, args.bert_config, args.do_lower_case,
                             args.checkpoint_version, args.allow_unsafe_checkpoint)
        print(f"wrote a transformers megatron-bert folder to {out}")
    elif args.command == "inspect":
        import json
        from pathlib import Path

        from ..modules.encoders.megatron_formats import describe

        info = describe(Path(args.path), args.allow_unsafe_checkpoint)
        print(json.dumps(info) if args.json else "\n".join(f"{k}: {v}" for k, v in info.items()))


if __name__ == "__main__":
    argv = sys.argv[1:]
    run(lambda: main(argv), argv)
