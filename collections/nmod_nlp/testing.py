"""Writing Megatron-LM's checkpoint layout, so that tests, docs and benchmarks can make the
checkpoints the encoders read: tensor-parallel shards, each ``checkpoint_version``'s QKV ordering.

It lives here rather than in ``nmod.testing`` because it needs the encoders' own tables, and
``nmod`` never imports a collection; and rather than in ``encoders/`` because nmod only reads
Megatron checkpoints, it does not train them.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import torch
from torch import nn

from .modules.encoders.checkpoint_io import rename
from .modules.encoders.megatron import padded_vocab_size
from .modules.encoders.megatron_checkpoint import (
    CHECKPOINT_VERSION,
    MEGATRON_PREFIXES,
    QKV,
    fit_vocab_rows,
    qkv_from_current,
    tensor_parallel_dim,
)

__all__ = ["save_megatron_checkpoint"]


def save_megatron_checkpoint(
    state: nn.Module | dict[str, torch.Tensor],
    directory: str | Path,
    num_attention_heads: int,
    tensor_parallel_size: int = 1,
    checkpoint_version: float = CHECKPOINT_VERSION,
    args: dict | None = None,
    iteration: int | str = "release",
    make_vocab_size_divisible_by: int = 128,
) -> list[Path]:
    """Writes Megatron-LM's save layout: ``latest_checkpointed_iteration.txt`` and one
    ``<iteration>/mp_rank_XX/model_optim_rng.pt`` per tensor-parallel rank.

    ``state`` is a ``MegatronBertModel`` (or ``MegatronBERT``) or its state dict; a pooler in it is
    saved as Megatron-LM saves a BERT pretrained with a binary head (``language_model.pooler``). Versions before
    ``CHECKPOINT_VERSION`` use the older names (``transformer``, ``attention``); each shard's fused QKV
    is stored in the row order of ``checkpoint_version``. The vocab is zero-padded to a multiple of
    ``make_vocab_size_divisible_by * tp`` as Megatron does. The sizes go into the ``args`` Megatron
    stores (``args`` adds to or overrides them), so the checkpoint describes itself. Returns the files.
    """
    recorded = {}
    if isinstance(state, nn.Module):
        cfg = getattr(state, "config", None)
        if cfg is not None:  # what Megatron's args would say about this model
            recorded = {
                "layernorm_epsilon": cfg.layernorm_epsilon,
                "hidden_dropout": cfg.hidden_dropout,
                "attention_dropout": cfg.attention_dropout,
                "openai_gelu": cfg.activation in ("gelu_new", "gelu_pytorch_tanh"),
            }
        state = state.state_dict()
    state, _ = rename(dict(state), [(MEGATRON_PREFIXES, "")])
    tp = tensor_parallel_size
    if num_attention_heads % tp:
        raise ValueError(f"{num_attention_heads} heads cannot be split over {tp} tensor-parallel ranks")
    embedding = state["embedding.word_embeddings.weight"]
    sizes = {
        "hidden_size": embedding.shape[1],
        "num_layers": len({k.split(".")[2] for k in state if k.startswith("encoder.layers.")}),
        "num_attention_heads": num_attention_heads,
        "max_position_embeddings": state["embedding.position_embeddings.weight"].shape[0],
        "ffn_hidden_size": state["encoder.layers.0.mlp.dense_h_to_4h.weight"].shape[0],
        "make_vocab_size_divisible_by": make_vocab_size_divisible_by,
        **recorded,
    }
    rows = padded_vocab_size(embedding.shape[0], make_vocab_size_divisible_by, tp)
    state["embedding.word_embeddings.weight"] = fit_vocab_rows(embedding, embedding.shape[0], rows, "writer")
    legacy_names = checkpoint_version < CHECKPOINT_VERSION
    encoder_key = "transformer" if legacy_names else "encoder"
    directory = Path(directory)
    folder = directory / (iteration if iteration == "release" else f"iter_{int(iteration):07d}")
    files = []
    for rank in range(tp):
        embedding_tree, encoder, pooler = {}, {}, {}
        for key, value in state.items():
            dim = tensor_parallel_dim(key)
            if dim is not None:
                value = value.chunk(tp, dim=dim)[rank]
            if QKV.search(key):
                value = qkv_from_current(value, checkpoint_version, num_attention_heads // tp)
            value = value.clone()  # a view would save the whole unsplit storage
            if key.startswith("embedding."):
                module, param = key[len("embedding."):].split(".", 1)
                embedding_tree.setdefault(module, {})[param] = value
            elif key.startswith("pooler."):
                module, param = key[len("pooler."):].split(".", 1)
                pooler.setdefault(module, {})[param] = value
            else:
                name = key[len("encoder."):]
                encoder[re.sub(r"\.self_attention\.", ".attention.", name) if legacy_names else name] = value
        meta_args = argparse.Namespace(
            **{**sizes, **(args or {}), "tensor_model_parallel_size": tp, "padded_vocab_size": rows}
        )
        checkpoint = {
            "iteration": 0 if iteration == "release" else int(iteration),
            "checkpoint_version": checkpoint_version,
            "args": meta_args,
            "model": {"language_model": {"embedding": embedding_tree, encoder_key: encoder,
                                         **({"pooler": pooler} if pooler else {})}},
        }
        file = folder / f"mp_rank_{rank:02d}" / "model_optim_rng.pt"
        file.parent.mkdir(parents=True, exist_ok=True)
        torch.save(checkpoint, file)
        files.append(file)
    (directory / "latest_checkpointed_iteration.txt").write_text(str(iteration))
    return files
