"""Task heads on top of an encoder's hidden states: per-token, per-sequence and regression.

Parameter names (``mlp.layer0.weight``, ``mlp.layer2.weight``, ...) are NeMo 0.11's, so head
checkpoints written by NeMo (for example its BERT and Megatron SQuAD heads) load unchanged.

A sequence head reads one of two things (``pooled``): the encoder's ``pooled_output`` (the
pretrained pooler, dense + tanh on [CLS]: Megatron-LM's ``Classification`` and transformers'
``BertForSequenceClassification`` put dropout and one fresh Linear on it), or, as NeMo 0.11 does,
the [CLS] token's hidden state straight from ``hidden_states``.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from nmod.backends.pytorch import TrainableNM
from nmod.types import ChannelType, LogitsType, NeuralType, RegressionValuesType

from ..dropout import Dropout

__all__ = ["MultiLayerPerceptron", "TokenClassifier", "SequenceClassifier", "SequenceRegression", "ACTIVATIONS"]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "silu": nn.SiLU}


def transformer_weights_init(module: nn.Module, std: float = 0.02) -> None:
    """BERT's initialisation (normal, std 0.02, zero bias): what the pretrained encoder expects."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class MultiLayerPerceptron(nn.Module):
    """``num_layers - 1`` hidden ``Linear(hidden, hidden)`` + activation, then ``Linear(hidden, classes)``.

    Layers are attributes ``layer0``, ``layer1``, ... (activations take the odd slots and have no
    weights), as in NeMo.
    """

    def __init__(self, hidden_size: int, num_classes: int, num_layers: int, activation: str, log_softmax: bool):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; known activations: {', '.join(ACTIVATIONS)}")
        for name, value in (("hidden_size", hidden_size), ("num_classes", num_classes), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.layers = 0
        for _ in range(num_layers - 1):
            setattr(self, f"layer{self.layers}", nn.Linear(hidden_size, hidden_size))
            setattr(self, f"layer{self.layers + 1}", ACTIVATIONS[activation]())
            self.layers += 2
        setattr(self, f"layer{self.layers}", nn.Linear(hidden_size, num_classes))
        self.layers += 1
        self.log_softmax = log_softmax

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        for i in range(self.layers):
            hidden_states = getattr(self, f"layer{i}")(hidden_states)
        return torch.log_softmax(hidden_states, dim=-1) if self.log_softmax else hidden_states


def _check_hidden(module: nn.Module, hidden_states: torch.Tensor, ndim: int, hidden_size: int,
                  port: str = "hidden_states") -> None:
    if hidden_states is None or hidden_states.ndim != ndim or hidden_states.shape[-1] != hidden_size:
        shape = "(B, T, D)" if ndim == 3 else "(B, D)"
        raise ValueError(
            f"{type(module).__name__}.{port} expects shape {shape.replace('D', str(hidden_size))} but got "
            f"{None if hidden_states is None else tuple(hidden_states.shape)}"
        )


def sequence_input_ports(pooled: bool) -> dict[str, NeuralType]:
    """What a sequence head reads: the encoder's pooled output ``(B, D)``, or its hidden states ``(B, T, D)``."""
    if pooled:
        return {"pooled_output": NeuralType(("B", "D"), ChannelType())}
    return {"hidden_states": NeuralType(("B", "T", "D"), ChannelType())}


def first_token(module: nn.Module, hidden_states: torch.Tensor | None, pooled_output: torch.Tensor | None,
                pooled: bool) -> torch.Tensor:
    """The ``(B, D)`` a sequence head scores: the pooled output as it is, or [CLS]'s hidden state."""
    if pooled:
        _check_hidden(module, pooled_output, 2, module.hidden_size, "pooled_output")
        return pooled_output
    _check_hidden(module, hidden_states, 3, module.hidden_size)
    return hidden_states[:, 0]


class TokenClassifier(TrainableNM):
    """A class score per token: NER, punctuation, and (``num_classes=2``) SQuAD start/end spans.

    ``log_softmax=True`` returns log-probabilities (still typed as logits, which ``CrossEntropyLoss``
    accepts unchanged since log_softmax is idempotent); question answering wants raw logits.
    """

    @property
    def input_ports(self):
        return {"hidden_states": NeuralType(("B", "T", "D"), ChannelType())}

    @property
    def output_ports(self):
        return {"logits": NeuralType(("B", "T", "C"), LogitsType())}

    def __init__(
        self,
        hidden_size: int,
        num_classes: int,
        num_layers: int = 1,
        activation: str = "relu",
        log_softmax: bool = True,
        dropout: float = 0.0,
        use_transformer_init: bool = True,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.mlp = MultiLayerPerceptron(hidden_size, num_classes, num_layers, activation, log_softmax)
        self.dropout = Dropout(dropout)
        if use_transformer_init:
            self.apply(transformer_weights_init)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        _check_hidden(self, hidden_states, 3, self.hidden_size)
        return self.mlp(self.dropout(hidden_states))


class SequenceClassifier(TokenClassifier):
    """A class score per sequence: from the encoder's ``pooled_output`` (``pooled=True``; with
    ``num_layers=1`` Megatron-LM's and transformers' head), or from the first token's hidden state.

    Same layers and arguments as `TokenClassifier`; only the output drops the time axis.
    """

    @property
    def input_ports(self):
        return sequence_input_ports(self.pooled)

    @property
    def output_ports(self):
        return {"logits": NeuralType(("B", "C"), LogitsType())}

    def __init__(
        self,
        hidden_size: int,
        num_classes: int,
        num_layers: int = 1,
        activation: str = "relu",
        log_softmax: bool = True,
        dropout: float = 0.0,
        use_transformer_init: bool = True,
        pooled: bool = False,
        name: Optional[str] = None,
    ):
        super().__init__(hidden_size, num_classes, num_layers, activation, log_softmax, dropout, use_transformer_init,
                         name=name)
        self.pooled = bool(pooled)

    def forward(self, hidden_states: torch.Tensor | None = None, pooled_output: torch.Tensor | None = None):
        return self.mlp(self.dropout(first_token(self, hidden_states, pooled_output, self.pooled)))  # (B, C)


class SequenceRegression(TrainableNM):
    """One real value per sequence (STS-B-style similarity scores), from the encoder's ``pooled_output``
    (``pooled=True``) or the first token's hidden state."""

    @property
    def input_ports(self):
        return sequence_input_ports(self.pooled)

    @property
    def output_ports(self):
        return {"preds": NeuralType(("B",), RegressionValuesType())}

    def __init__(
        self,
        hidden_size: int,
        num_layers: int = 1,
        activation: str = "relu",
        dropout: float = 0.0,
        use_transformer_init: bool = True,
        pooled: bool = False,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.pooled = bool(pooled)
        self.mlp = MultiLayerPerceptron(hidden_size, 1, num_layers, activation, log_softmax=False)
        self.dropout = Dropout(dropout)
        if use_transformer_init:
            self.apply(transformer_weights_init)

    def forward(self, hidden_states: torch.Tensor | None = None, pooled_output: torch.Tensor | None = None):
        return self.mlp(self.dropout(first_token(self, hidden_states, pooled_output, self.pooled))).view(-1)  # (B,)
