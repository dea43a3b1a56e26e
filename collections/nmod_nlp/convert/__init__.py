"""Conversions to Hugging Face ``transformers`` folders; the command line is ``python -m nmod_nlp.convert``."""
from .hf import megatron_to_hf, to_hf, write_hf_folder

__all__ = ["megatron_to_hf", "to_hf", "write_hf_folder"]
