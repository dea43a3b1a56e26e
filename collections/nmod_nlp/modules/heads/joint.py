"""Two-headed classifiers that share one encoder pass: punctuation + capitalization, intent + slots.

Both are NeMo 0.11's modules: two of NeMo's multi-layer perceptrons over the same dropped-out hidden
states, with NeMo's parameter names (``punct_mlp.layer0.weight``, ``intent_mlp.layer2.bias``, ...) so
head checkpoints written by NeMo load with ``restore_from``. A call returns a namedtuple of the two
outputs, so a recipe reads them by name: ``out.punct_logits``, ``out.slot_logits``.
"""
from __future__ import annotations

from typing import Optional

import torch

from nmod.backends.pytorch import TrainableNM
from nmod.types import ChannelType, LogitsType, NeuralType

from ..dropout import Dropout
from .classifiers import (MultiLayerPerceptron, _check_hidden, first_token, sequence_input_ports,
                          transformer_weights_init)

__all__ = ["PunctCapitTokenClassifier", "JointIntentSlotClassifier"]


class PunctCapitTokenClassifier(TrainableNM):
    """Per token: a punctuation class (what follows the word: ``O , . ?``) and a capitalization class
    (``O`` or ``U``). Defaults are NeMo's recipe flags ``--punct_num_fc_layers 3 --capit_num_fc_layers 2``.
    """

    @property
    def input_ports(self):
        return {"hidden_states": NeuralType(("B", "T", "D"), ChannelType())}

    @property
    def output_ports(self):
        return {"punct_logits": NeuralType(("B", "T", "C"), LogitsType()),
                "capit_logits": NeuralType(("B", "T", "C"), LogitsType())}

    def __init__(
        self,
        hidden_size: int,
        punct_num_classes: int,
        capit_num_classes: int,
        punct_num_layers: int = 3,
        capit_num_layers: int = 2,
        activation: str = "relu",
        log_softmax: bool = True,
        dropout: float = 0.0,
        use_transformer_init: bool = True,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.dropout = Dropout(dropout)
        self.punct_mlp = MultiLayerPerceptron(hidden_size, punct_num_classes, punct_num_layers, activation, log_softmax)
        self.capit_mlp = MultiLayerPerceptron(hidden_size, capit_num_classes, capit_num_layers, activation, log_softmax)
        if use_transformer_init:
            self.apply(transformer_weights_init)

    def forward(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        _check_hidden(self, hidden_states, 3, self.hidden_size)
        hidden_states = self.dropout(hidden_states)
        return self.punct_mlp(hidden_states), self.capit_mlp(hidden_states)  # (B, T, Cp), (B, T, Cc)


class JointIntentSlotClassifier(TrainableNM):
    """An intent per query and a slot per token. The intent is read from the encoder's
    ``pooled_output`` (``pooled=True``: the pretrained pooler, as sentence classifiers do) or, as in
    NeMo 0.11, from the first token's hidden state.

    NeMo 0.11's head: two-layer perceptrons with raw logits (``log_softmax=False``) and one dropout.
    """

    @property
    def input_ports(self):
        ports = {"hidden_states": NeuralType(("B", "T", "D"), ChannelType())}
        return {**ports, **sequence_input_ports(True)} if self.pooled else ports

    @property
    def output_ports(self):
        return {"intent_logits": NeuralType(("B", "C"), LogitsType()),
                "slot_logits": NeuralType(("B", "T", "C"), LogitsType())}

    def __init__(
        self,
        hidden_size: int,
        num_intents: int,
        num_slots: int,
        intent_num_layers: int = 2,
        slot_num_layers: int = 2,
        activation: str = "relu",
        log_softmax: bool = False,
        dropout: float = 0.0,
        use_transformer_init: bool = True,
        pooled: bool = False,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.hidden_size = hidden_size
        self.pooled = bool(pooled)
        self.dropout = Dropout(dropout)
        self.intent_mlp = MultiLayerPerceptron(hidden_size, num_intents, intent_num_layers, activation, log_softmax)
        self.slot_mlp = MultiLayerPerceptron(hidden_size, num_slots, slot_num_layers, activation, log_softmax)
        if use_transformer_init:
            self.apply(transformer_weights_init)

    def forward(self, hidden_states: torch.Tensor, pooled_output: torch.Tensor | None = None):
        _check_hidden(self, hidden_states, 3, self.hidden_size)
        hidden_states = self.dropout(hidden_states)  # one mask for both heads, as NeMo's
        if self.pooled:
            sentence = self.dropout(first_token(self, None, pooled_output, pooled=True))
        else:
            sentence = hidden_states[:, 0]
        return self.intent_mlp(sentence), self.slot_mlp(hidden_states)  # (B, Ci), (B, T, Cs)
