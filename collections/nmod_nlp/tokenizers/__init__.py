"""Tokenizers: BERT WordPiece with character offsets, and `get_tokenizer` by name."""
from .bert_tokenizer import BertWordPieceTokenizer, NemoBertTokenizer, load_vocab
from .tokenizer_spec import TokenizerSpec
from .tokenizer_utils import BERT_TOKENIZER_NAMES, data_layer_tokenizer, get_tokenizer, resolve_vocab_file

__all__ = [
    "TokenizerSpec",
    "BertWordPieceTokenizer",
    "NemoBertTokenizer",
    "get_tokenizer",
    "data_layer_tokenizer",
    "resolve_vocab_file",
    "load_vocab",
    "BERT_TOKENIZER_NAMES",
]
