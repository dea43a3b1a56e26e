"""Megatron-LM BERT: pre-LayerNorm blocks, fused QKV, final LayerNorm, padded word embeddings.

Parameter names are Megatron-LM's own (``language_model.embedding.word_embeddings``,
``encoder.layers.N.self_attention.query_key_value``, ``mlp.dense_h_to_4h``, ...), so loading a Megatron
checkpoint is a table of renames (see ``megatron_checkpoint.py``), not a puzzle.
"""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nmod.backends.pytorch import TrainableNM
from nmod.core.errors import ConfigError
from nmod.types import ChannelType, NeuralType

from ...ports import bert_input_ports
from ..dropout import Dropout
from .attention import ATTENTION_IMPLS, Packed, Padded, padded_attention, prepare_inputs
from .checkpoint_io import check_vocab_fits
from .megatron_checkpoint import read_megatron_checkpoint
from .megatron_config import ACTIVATION_NAMES, CONFIG_FIELDS, MegatronBertConfig, count_vocab, padded_vocab_size

__all__ = ["MegatronBERT", "MegatronBertModel", "MegatronBertConfig", "Pooler", "padded_vocab_size", "count_vocab",
           "init_weights", "encoder_output_ports", "resolve_add_pooler"]

ACTIVATIONS = {
    "gelu": nn.functional.gelu,
    "gelu_new": partial(nn.functional.gelu, approximate="tanh"),  # Megatron's --openai-gelu
    "gelu_pytorch_tanh": partial(nn.functional.gelu, approximate="tanh"),
    "relu": nn.functional.relu,
}
assert tuple(ACTIVATIONS) == ACTIVATION_NAMES

class Embedding(nn.Module):
    def __init__(self, cfg: MegatronBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.padded_vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        # Megatron pretrains without token types when it has no binary head: num_tokentypes = 0.
        self.tokentype_embeddings = nn.Embedding(cfg.num_tokentypes, cfg.hidden_size) if cfg.num_tokentypes else None
        self.dropout = Dropout(cfg.hidden_dropout)  # no LayerNorm: the first block's input_layernorm does it

    def forward(self, input_ids, position_ids, token_type_ids):
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        if self.tokentype_embeddings is not None:
            x = x + self.tokentype_embeddings(token_type_ids)
        return self.dropout(x)


class SelfAttention(nn.Module):
    def __init__(self, cfg: MegatronBertConfig):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
        self.query_key_value = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_dropout

    def forward(self, x, layout: Padded | Packed):
        # Rows of query_key_value are ordered [heads, (q, k, v), head_dim]: checkpoint_version >= 2.
        # x: (B, T, D) padded or (N, D) packed; "..." below is (B, T) or (N,).
        qkv = self.query_key_value(x).unflatten(-1, (self.num_heads, 3 * self.head_dim))  # (..., H, 3 * Dh)
        q, k, v = qkv.chunk(3, dim=-1)  # each (..., H, Dh)
        out = layout.attend(q, k, v, self.dropout_p if self.training else 0.0)  # (..., H, Dh)
        return self.dense(out.flatten(-2))  # (..., D)


class MLP(nn.Module):
    def __init__(self, cfg: MegatronBertConfig):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(cfg.hidden_size, cfg.ffn_hidden_size)
        self.dense_4h_to_h = nn.Linear(cfg.ffn_hidden_size, cfg.hidden_size)
        self.activation = ACTIVATIONS[cfg.activation]

    def forward(self, x):
        return self.dense_4h_to_h(self.activation(self.dense_h_to_4h(x)))


class Block(nn.Module):
    def __init__(self, cfg: MegatronBertConfig):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layernorm_epsilon)
        self.self_attention = SelfAttention(cfg)
        self.post_attention_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layernorm_epsilon)
        self.mlp = MLP(cfg)
        self.dropout = Dropout(cfg.hidden_dropout)

    def forward(self, x, layout: Padded | Packed):
        x = x + self.dropout(self.self_attention(self.input_layernorm(x), layout))
        return x + self.dropout(self.mlp(self.post_attention_layernorm(x)))


class Transformer(nn.Module):
    def __init__(self, cfg: MegatronBertConfig):
        super().__init__()
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_layers))
        self.final_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layernorm_epsilon)

    def forward(self, x, layout: Padded | Packed):
        for layer in self.layers:
            x = layer(x, layout)
        return self.final_layernorm(x)


class Pooler(nn.Module):
    """Dense + tanh on the first token ([CLS]): Megatron-LM's and BERT's pooler, pretrained with the
    next-sentence (binary) head, and what both Megatron-LM's and transformers' sequence classifiers
    put their one fresh Linear on."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)

    def forward(self, hidden):
        return torch.tanh(self.dense(hidden[:, 0]))  # (B, T, D) -> (B, D)


class MegatronBertModel(nn.Module):
    """Megatron-LM's ``language_model`` for BERT, with its pooler when ``add_pooler`` (Megatron's own
    argument), without the pretraining heads. Returns the hidden states, or with a pooler
    ``(hidden_states, pooled_output)`` as Megatron's ``TransformerLanguageModel`` does."""

    def __init__(self, cfg: MegatronBertConfig, add_pooler: bool = False):
        super().__init__()
        self.config = cfg
        self.embedding = Embedding(cfg)
        self.encoder = Transformer(cfg)
        self.pooler = Pooler(cfg.hidden_size) if add_pooler else None

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, attention_impl: str = "auto"):
        layout, ids, positions, types = prepare_inputs(
            input_ids, token_type_ids, attention_mask, attention_impl, self.config.max_position_embeddings)
        hidden = layout.unpack(self.encoder(self.embedding(ids, positions, types), layout))  # (B, T, D)
        if self.pooler is None:
            return hidden
        return hidden, self.pooler(hidden)  # (B, T, D), (B, D)

    @property
    def word_embeddings_weight(self) -> torch.Tensor:
        """The real vocabulary's rows only, for an LM head to tie to: padding rows are never predicted."""
        return self.embedding.word_embeddings.weight[: self.config.vocab_size]


def encoder_output_ports(has_pooler: bool) -> dict[str, NeuralType]:
    """An encoder's outputs: one hidden state per token, and with a pooler one vector per sequence."""
    ports = {"hidden_states": NeuralType(("B", "T", "D"), ChannelType())}
    if has_pooler:
        ports["pooled_output"] = NeuralType(("B", "D"), ChannelType())
    return ports


POOLER_CHOICES = (False, True, "if_pretrained")



def resolve_add_pooler(add_pooler: bool | str, checkpoint_has_pooler: bool) -> bool:
    """Whether an encoder gets a pooler: ``False`` (NeMo's encoders: hidden states only; a checkpoint's
    pooler is ignored), ``True`` (the checkpoint's pooler, or a freshly initialised one when it has
    none, as ``transformers.BertModel`` does), or ``"if_pretrained"`` (only when the checkpoint has
    one: what a recipe asks for, since a fresh pooler brings nothing a fresh head does not)."""
    if add_pooler not in POOLER_CHOICES:
        raise ConfigError(f"add_pooler must be one of {POOLER_CHOICES}, got {add_pooler!r}")
    return checkpoint_has_pooler if add_pooler == "if_pretrained" else bool(add_pooler)


class MegatronBERT(TrainableNM):
    """Megatron-LM BERT encoder as a neural module: token ids in, hidden states out.

    ``config``: a ``MegatronBertConfig`` (or its ``to_dict()``), used as it is. Without one, the
    config is ``MegatronBertConfig.resolve``d from NeMo's keyword arguments (``None``: not given),
    ``config_file`` (a Megatron ``config.json``), then the ``args`` the checkpoint records; the vocab
    size from ``vocab_size``, ``vocab_file``, the config file, the checkpoint.
    ``checkpoint``: any format ``megatron_checkpoint.read_megatron_checkpoint`` reads (a bare state
    dict, a ``model_optim_rng.pt``, a ``release/mp_rank_XX`` shard folder, a HF megatron-bert folder,
    nmod's own saved weights); without one the weights start from Megatron's init.
    ``attention_impl``: ``"auto"`` packs real tokens when a batch holds enough padding,
    ``"padded"`` and ``"unpadded"`` force one path.
    ``add_pooler``: see ``resolve_add_pooler``; with a pooler the module has a second output port,
    ``pooled_output`` ``(B, D)``, and a call returns ``(hidden_states, pooled_output)``.
    """

    @property
    def input_ports(self):
        return bert_input_ports()

    @property
    def output_ports(self):
        return encoder_output_ports(self.has_pooler)

    def __init__(
        self,
        config: MegatronBertConfig | Mapping[str, Any] | None = None,
        checkpoint: str | None = None,
        attention_impl: str = "auto",
        *,
        # NeMo's keyword arguments: a thin front over MegatronBertConfig.resolve.
        config_file: str | None = None,
        vocab_file: str | None = None,
        vocab_size: int | None = None,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        num_attention_heads: int | None = None,
        max_seq_length: int | None = None,
        ffn_hidden_size: int | None = None,
        num_tokentypes: int | None = None,
        make_vocab_size_divisible_by: int | None = None,
        layernorm_epsilon: float | None = None,
        hidden_dropout: float | None = None,
        attention_dropout: float | None = None,
        activation: str | None = None,
        # How to read the checkpoint.
        checkpoint_version: float | None = None,
        allow_unsafe_checkpoint: bool = False,
        add_pooler: bool | str = False,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if attention_impl not in ATTENTION_IMPLS:
            raise ConfigError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {attention_impl!r}")
        # NeMo's keyword arguments that name config fields (None: not given), for MegatronBertConfig.resolve.
        given = locals()
        overrides = {k: given[k] for k in (*CONFIG_FIELDS, "max_seq_length") if k in given}
        loaded = read_megatron_checkpoint(checkpoint, checkpoint_version, allow_unsafe_checkpoint) if checkpoint else None
        if loaded is not None and loaded.vocab_file is not None:  # a .nemo or NeMo 2 folder carries its vocabulary
            vocab_file = _same_vocabulary(vocab_file, loaded.vocab_file, loaded.source)
        if config is not None:
            config = _config_object(config, {**overrides, "config_file": config_file,
                                             "vocab_file": vocab_file if checkpoint is None else None})
        elif vocab_size is None and vocab_file is not None:
            overrides["vocab_size"] = count_vocab(vocab_file)
        if config is None:
            config = MegatronBertConfig.resolve(overrides, config_file, loaded.recorded_args if loaded else None,
                                                loaded.source if loaded else "the checkpoint")
        if loaded is not None and loaded.vocab_rows is not None and (vocab_size or vocab_file):
            check_vocab_fits(config.vocab_size, loaded.vocab_rows,
                             config.make_vocab_size_divisible_by * loaded.trained_tensor_parallel,
                             vocab_file or f"vocab_size={vocab_size}", loaded.source)
        self.config = config
        self.attention_impl = attention_impl
        self.has_pooler = resolve_add_pooler(add_pooler, loaded is not None and loaded.has_pooler)
        self.vocab_file = vocab_file  # the vocabulary this encoder was built for (a .nemo's own, extracted)
        self.recorded_lower_case = loaded.lower_case if loaded is not None else None  # what its tokenizer did
        self.language_model = MegatronBertModel(config, add_pooler=self.has_pooler)
        if loaded is None:
            self.language_model.apply(init_weights)
        else:
            loaded.load_into(self.language_model)

    @property
    def init_params(self) -> dict[str, Any]:
        """As captured, with a ``config`` object written as its fields, so that ``export_to_config``
        writes plain YAML and ``import_from_config`` rebuilds the same config from it."""
        params = super().init_params
        if isinstance(params.get("config"), MegatronBertConfig):
            params["config"] = params["config"].to_dict()
        return params

    def self_contained_init_params(self) -> dict[str, Any]:
        """Init params that rebuild this architecture from no file at all: the resolved config, no paths.

        ``init_params`` may name the ``config_file``, ``vocab_file`` and ``checkpoint`` this module was
        built from; a model folder (``nmod_nlp.model_folder``) writes these instead, with the weights
        beside them, so it can be moved to a machine that has none of those files.
        """
        return {"config": self.config.to_dict(), "attention_impl": self.attention_impl, "add_pooler": self.has_pooler}

    @classmethod
    def from_config_file(
        cls, config_file: str, checkpoint: str | None = None, vocab_file: str | None = None, **kwargs
    ) -> "MegatronBERT":
        """A Megatron ``config.json`` (keys ``hidden-size``, ``num-attention-heads``, ``num-layers``,
        ``max-seq-length``; underscore and HF spellings too) plus an optional checkpoint and vocab."""
        return cls(config_file=config_file, checkpoint=checkpoint, vocab_file=vocab_file, **kwargs)

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        return self.language_model(input_ids, token_type_ids, attention_mask, self.attention_impl)

    def tracing(self):
        return padded_attention(self)  # the packed layout would be frozen by a trace

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def word_embeddings_weight(self) -> torch.Tensor:
        """The real vocabulary's embedding rows (padding rows cut off), for an LM head to tie to."""
        return self.language_model.word_embeddings_weight


def _same_vocabulary(given: str | None, carried: Path, source: str) -> str:
    """The checkpoint's own vocabulary, or ``given`` when it is the same one; a different one is an error."""
    if given is None:
        return str(carried)
    if Path(given).read_bytes().splitlines() != carried.read_bytes().splitlines():
        raise ConfigError(f"--vocab_file {given} ({count_vocab(given)} tokens) is not the vocabulary {source} carries "
                          f"({count_vocab(carried)} tokens); leave --vocab_file out to use the checkpoint's own")
    return given


def _config_object(config: MegatronBertConfig | Mapping[str, Any], nemo_arguments: dict) -> MegatronBertConfig:
    """A config given whole: NeMo's arguments would be ignored beside it, so they are refused."""
    if isinstance(config, (str, Path)):
        raise TypeError(
            f"MegatronBERT: config is a MegatronBertConfig or a dict of its fields, got the path {str(config)!r}; "
            "pass a Megatron config.json as config_file="
        )
    given = sorted(key for key, value in nemo_arguments.items() if value is not None)
    if given:
        raise ConfigError(
            f"MegatronBERT: pass either config or {given}, not both; to change a field of a config use "
            "dataclasses.replace(config, hidden_dropout=0.0)"
        )
    return config if isinstance(config, MegatronBertConfig) else MegatronBertConfig(**config)


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """Megatron's init: normal(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=std)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)
    if isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)
