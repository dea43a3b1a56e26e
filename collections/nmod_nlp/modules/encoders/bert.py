"""Google / Hugging Face BERT: post-LayerNorm blocks, LayerNorm on the embeddings.

Parameter names are Hugging Face's (``embeddings.LayerNorm``, ``encoder.layer.N.attention.self.query``,
``attention.output.dense``, ``intermediate.dense``, ``output.LayerNorm``), so any HF BERT checkpoint
loads as it is; ``hf_checkpoint.py`` only strips the ``bert.`` prefix and TF-era ``gamma``/``beta``.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from torch import nn

from nmod.backends.pytorch import TrainableNM
from nmod.core.errors import ConfigError

from ...ports import bert_input_ports
from ..dropout import Dropout
from .attention import ATTENTION_IMPLS, Packed, Padded, padded_attention, prepare_inputs
from .checkpoint_io import has_pooler
from .hf_checkpoint import load_bert_state_dict, read_hf_checkpoint, renamed_bert_state
from .megatron import ACTIVATIONS, Pooler, encoder_output_ports, init_weights, resolve_add_pooler


@dataclass
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}"
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"hidden_act {self.hidden_act!r} is not one of {sorted(ACTIVATIONS)}")

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> "BertConfig":
        """A HF ``config.json``; refuses what this encoder would silently get wrong."""
        model_type = values.get("model_type", "bert")
        if model_type != "bert":
            hint = " (use MegatronBERT)" if model_type == "megatron-bert" else ""
            raise ConfigError(f"{source}: model_type is {model_type!r}, this encoder loads 'bert'{hint}")
        position = values.get("position_embedding_type", "absolute")
        if position != "absolute":
            raise ConfigError(f"{source}: position_embedding_type {position!r} is not supported, only 'absolute'")
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})

    @staticmethod
    def read_json(path: str | Path) -> dict:
        path = Path(path)
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"{path}: cannot read a BERT config.json ({err})") from err

    @classmethod
    def from_json(cls, path: str | Path) -> "BertConfig":
        return cls.from_dict(cls.read_json(path), source=str(path))


class BertEmbeddings(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, input_ids, position_ids, token_type_ids):
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x + self.token_type_embeddings(token_type_ids)))


class BertSelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.num_heads = cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout_p = cfg.attention_probs_dropout_prob

    def forward(self, x, layout: Padded | Packed):
        # x: (B, T, D) padded or (N, D) packed; "..." below is (B, T) or (N,).
        q, k, v = (proj(x).unflatten(-1, (self.num_heads, -1))  # each (..., H, Dh)
                   for proj in (self.query, self.key, self.value))
        return layout.attend(q, k, v, self.dropout_p if self.training else 0.0).flatten(-2)  # (..., D)


class BertResidualOutput(nn.Module):
    """Projection, dropout, residual, then LayerNorm: the post-LN step after attention and after the MLP."""

    def __init__(self, cfg: BertConfig, in_features: int):
        super().__init__()
        self.dense = nn.Linear(in_features, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = Dropout(cfg.hidden_dropout_prob)

    def forward(self, x, residual):
        return self.LayerNorm(residual + self.dropout(self.dense(x)))


class BertAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.self = BertSelfAttention(cfg)
        self.output = BertResidualOutput(cfg, cfg.hidden_size)

    def forward(self, x, layout: Padded | Packed):
        return self.output(self.self(x, layout), x)


class BertIntermediate(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.activation = ACTIVATIONS[cfg.hidden_act]

    def forward(self, x):
        return self.activation(self.dense(x))


class BertLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = BertAttention(cfg)
        self.intermediate = BertIntermediate(cfg)
        self.output = BertResidualOutput(cfg, cfg.intermediate_size)

    def forward(self, x, layout: Padded | Packed):
        x = self.attention(x, layout)
        return self.output(self.intermediate(x), x)


class BertEncoder(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, x, layout: Padded | Packed):
        for layer in self.layer:
            x = layer(x, layout)
        return x


class BertModel(nn.Module):
    """HF ``BertModel``, with its pooler when ``add_pooler`` (HF's ``add_pooling_layer``): returns the
    hidden states, or with a pooler ``(hidden_states, pooled_output)``."""

    def __init__(self, cfg: BertConfig, add_pooler: bool = False):
        super().__init__()
        self.config = cfg
        self.embeddings = BertEmbeddings(cfg)
        self.encoder = BertEncoder(cfg)
        self.pooler = Pooler(cfg.hidden_size) if add_pooler else None

    def forward(self, input_ids, token_type_ids=None, attention_mask=None, attention_impl: str = "auto"):
        layout, ids, positions, types = prepare_inputs(
            input_ids, token_type_ids, attention_mask, attention_impl, self.config.max_position_embeddings)
        hidden = layout.unpack(self.encoder(self.embeddings(ids, positions, types), layout))  # (B, T, D)
        if self.pooler is None:
            return hidden
        return hidden, self.pooler(hidden)  # (B, T, D), (B, D)


class BERT(TrainableNM):
    """A Google/HF BERT encoder as a neural module: token ids in, hidden states out.

    ``pretrained_dir``: a HF folder (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``).
    ``checkpoint``: a HF folder or weights file, with ``config_file`` or the ``config.json`` beside it.
    ``config_file`` alone builds the architecture with fresh weights. Sizes and dropouts given as
    arguments override the config (``None``: from the config, else BERT-base). ``attention_impl``:
    ``"auto"`` packs real tokens when a batch holds enough padding, ``"padded"`` and ``"unpadded"``
    force one path. ``allow_unsafe_checkpoint``: unpickle a ``.bin`` that holds Python objects beyond
    tensors, for a file you trust (as ``MegatronBERT``, so ``get_pretrained_lm_model`` passes it to either).
    ``add_pooler``: as ``MegatronBERT``'s (``megatron.resolve_add_pooler``); with a pooler a call returns
    ``(hidden_states, pooled_output)``.
    """

    @property
    def input_ports(self):
        return bert_input_ports()

    @property
    def output_ports(self):
        return encoder_output_ports(self.has_pooler)

    def __init__(
        self,
        pretrained_dir: str | None = None,
        config_file: str | None = None,
        checkpoint: str | None = None,
        vocab_size: int | None = None,
        hidden_size: int | None = None,
        num_hidden_layers: int | None = None,
        num_attention_heads: int | None = None,
        intermediate_size: int | None = None,
        hidden_act: str | None = None,
        max_position_embeddings: int | None = None,
        type_vocab_size: int | None = None,
        layer_norm_eps: float | None = None,
        hidden_dropout_prob: float | None = None,
        attention_probs_dropout_prob: float | None = None,
        attention_impl: str = "auto",
        allow_unsafe_checkpoint: bool = False,
        add_pooler: bool | str = False,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if attention_impl not in ATTENTION_IMPLS:
            raise ConfigError(f"attention_impl must be one of {ATTENTION_IMPLS}, got {attention_impl!r}")
        state, values, source = None, {}, "BERT arguments"
        if pretrained_dir is not None or checkpoint is not None:
            path = checkpoint or pretrained_dir
            values, state, weights_file = read_hf_checkpoint(path, config_file, allow_unsafe_checkpoint)
            source = str(config_file or weights_file.parent / "config.json")
        elif config_file is not None:
            values, source = BertConfig.read_json(config_file), config_file
        given = dict(  # arguments given here override the config (e.g. dropout for fine-tuning)
            vocab_size=vocab_size,
            hidden_size=hidden_size,
            num_hidden_layers=num_hidden_layers,
            num_attention_heads=num_attention_heads,
            intermediate_size=intermediate_size,
            hidden_act=hidden_act,
            max_position_embeddings=max_position_embeddings,
            type_vocab_size=type_vocab_size,
            layer_norm_eps=layer_norm_eps,
            hidden_dropout_prob=hidden_dropout_prob,
            attention_probs_dropout_prob=attention_probs_dropout_prob,
        )
        values = {**values, **{key: value for key, value in given.items() if value is not None}}
        cfg = BertConfig.from_dict(values, source=str(source))
        self.config = cfg
        self.attention_impl = attention_impl
        self.has_pooler = resolve_add_pooler(add_pooler, state is not None and has_pooler(renamed_bert_state(state)[0]))
        # What the checkpoint's folder says its tokenizer did (tokenizer_config.json); None: it does not say.
        self.recorded_lower_case = _recorded_lower_case(weights_file.parent) if state is not None else None
        self.bert = BertModel(cfg, add_pooler=self.has_pooler)
        if state is None:
            self.bert.apply(init_weights)
        else:
            load_bert_state_dict(self.bert, state, str(weights_file))

    def self_contained_init_params(self) -> dict:
        """Init params that rebuild this architecture from no file at all: every config field, no paths.

        ``init_params`` may name the ``pretrained_dir``, ``checkpoint`` or ``config_file`` this module
        was built from; a model folder (``nmod_nlp.model_folder``) writes these instead, with the
        weights beside them, so it can be moved to a machine that has none of those files.
        """
        return {**asdict(self.config), "attention_impl": self.attention_impl, "add_pooler": self.has_pooler}

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        return self.bert(input_ids, token_type_ids, attention_mask, self.attention_impl)

    def tracing(self):
        return padded_attention(self)  # the packed layout would be frozen by a trace

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size


def _recorded_lower_case(folder: Path) -> bool | None:
    try:
        value = json.loads((folder / "tokenizer_config.json").read_text()).get("do_lower_case")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, bool) else None
