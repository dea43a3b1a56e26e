"""The ports every BERT graph shares, under one name each: what data layers emit and encoders read.

``input_ids``, ``token_type_ids`` and ``attention_mask`` are the encoders' names (transformers' too).
NeMo 0.11's data layers called the last two ``input_type_ids`` and ``input_mask``; those names still
work wherever a NeMo script uses them (``PORT_ALIASES``): ``batch.input_mask`` reads
``batch.attention_mask``, and ``loss(input_mask=...)`` passes it.
"""
from __future__ import annotations

from nmod.types import ChannelType, MaskType, NeuralType

__all__ = ["bert_input_ports", "NEMO_PORT_ALIASES", "encoder_inputs", "head_inputs"]

NEMO_PORT_ALIASES = {"input_type_ids": "token_type_ids", "input_mask": "attention_mask"}


def bert_input_ports() -> dict[str, NeuralType]:
    """Token ids, token types and the padding mask, ``(B, T)`` each."""
    return {
        "input_ids": NeuralType(("B", "T"), ChannelType()),
        "token_type_ids": NeuralType(("B", "T"), ChannelType()),
        "attention_mask": NeuralType(("B", "T"), MaskType()),
    }


def encoder_inputs(batch) -> dict:
    """The encoder's three inputs out of a data layer's outputs (any object with those attributes)."""
    return {name: getattr(batch, name) for name in bert_input_ports()}


def head_inputs(head, encoded) -> dict:
    """A head's ports from an encoder's output (one tensor, or ``(hidden_states, pooled_output)`` from
    an encoder with a pooler): ``hidden_states`` and, for a head that reads the pooler, ``pooled_output``."""
    ports = head.input_ports
    hidden = getattr(encoded, "hidden_states", encoded)
    out = {"hidden_states": hidden} if "hidden_states" in ports else {}
    if "pooled_output" in ports:
        out["pooled_output"] = encoded.pooled_output
    return out
