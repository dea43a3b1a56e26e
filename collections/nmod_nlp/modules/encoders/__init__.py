"""Pretrained encoders: Megatron-LM BERT and Google/HF BERT, with their checkpoint readers
(``megatron_formats``, ``megatron_checkpoint``, ``hf_checkpoint``; the writers tests use are in
``nmod_nlp.testing``)."""
from .attention import UNPAD_MIN_PADDING_FRACTION, Packed, Padded, choose_layout
from .bert import BERT, BertConfig, BertModel
from .hf_checkpoint import load_bert_state_dict, read_hf_checkpoint
from .megatron import MegatronBERT, MegatronBertConfig, MegatronBertModel, Pooler, padded_vocab_size
from .megatron_checkpoint import (
    CHECKPOINT_VERSION,
    MegatronCheckpoint,
    load_megatron_state_dict,
    read_megatron_checkpoint,
)
from .megatron_formats import FORMATS, recognise
from .pretrained import get_pretrained_lm_model

__all__ = [
    "BERT",
    "CHECKPOINT_VERSION",
    "FORMATS",
    "MegatronCheckpoint",
    "recognise",
    "BertConfig",
    "BertModel",
    "MegatronBERT",
    "MegatronBertConfig",
    "MegatronBertModel",
    "Packed",
    "Padded",
    "Pooler",
    "UNPAD_MIN_PADDING_FRACTION",
    "choose_layout",
    "get_pretrained_lm_model",
    "load_bert_state_dict",
    "load_megatron_state_dict",
    "padded_vocab_size",
    "read_hf_checkpoint",
    "read_megatron_checkpoint",
]
