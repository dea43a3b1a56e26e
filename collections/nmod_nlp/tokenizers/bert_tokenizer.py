"""BERT WordPiece from a `vocab.txt`, on the Rust `tokenizers` library.

Rust because SQuAD preprocessing tokenizes every context and question once per cache build and a
pure-Python WordPiece is the slowest step there; and because it gives character offsets, which is how
answers are mapped from characters to tokens and predicted spans back to the original text.

The pipeline is the one Google's BERT `tokenization.py` defines: clean control characters, put spaces
around CJK characters, lower-case and strip accents (NFD, drop combining marks) only when
`do_lower_case`, split on whitespace and punctuation, then greedy longest-match-first WordPiece with
`##` continuations and `[UNK]` for words over 100 characters or with no match.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

from tokenizers import AddedToken, Encoding, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .tokenizer_spec import TokenizerSpec

__all__ = ["BertWordPieceTokenizer", "NemoBertTokenizer", "load_vocab"]

SPECIAL_TOKENS = {"pad": "[PAD]", "unk": "[UNK]", "cls": "[CLS]", "sep": "[SEP]", "mask": "[MASK]"}


def load_vocab(vocab_file: str | Path) -> dict[str, int]:
    """One token a line, id = line number; the last of duplicate lines wins, as in BERT's loader."""
    path = Path(vocab_file)
    if not path.is_file():
        raise FileNotFoundError(f"vocab file {path} does not exist (expected a BERT vocab.txt, one token a line)")
    with open(path, encoding="utf-8") as f:
        tokens = f.read().split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()  # the newline that ends the last line
    vocab = {token: index for index, token in enumerate(tokens)}
    missing = [t for t in SPECIAL_TOKENS.values() if t not in vocab]
    if missing:
        raise ValueError(f"vocab file {path} lacks the special token(s) {missing}; a BERT vocab.txt has all of "
                         f"{list(SPECIAL_TOKENS.values())}")
    return vocab


class BertWordPieceTokenizer(TokenizerSpec):
    """BERT's tokenizer; `encode`/`encode_batch` also return character offsets into the input text."""

    def __init__(self, vocab_file: str | Path, do_lower_case: bool = True, max_input_chars_per_word: int = 100):
        self.vocab_file = str(vocab_file)
        self.do_lower_case = bool(do_lower_case)
        self.vocab = load_vocab(vocab_file)
        self._inv_vocab = {i: t for t, i in self.vocab.items()}
        self._max_chars = max_input_chars_per_word

        tok = Tokenizer(WordPiece(self.vocab, unk_token="[UNK]", max_input_chars_per_word=max_input_chars_per_word))
        # strip_accents=None would also follow `lowercase`; spelt out because it is BERT's rule.
        tok.normalizer = normalizers.BertNormalizer(
            clean_text=True, handle_chinese_chars=True, strip_accents=self.do_lower_case,
            lowercase=self.do_lower_case)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        # Special tokens written in the text ("[MASK]") stay one token, as in BERT's reference tokenizer.
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS.values()])
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
            special_tokens=[("[CLS]", self.vocab["[CLS]"]), ("[SEP]", self.vocab["[SEP]"])])
        tok.decoder = decoders.WordPiece(prefix="##")
        self.backend = tok

        with open(self.vocab_file, "rb") as f:
            vocab_hash = hashlib.sha256(f.read()).hexdigest()
        self._fingerprint = hashlib.sha256(
            f"bert-wordpiece/1|{vocab_hash}|lower={self.do_lower_case}|maxchars={max_input_chars_per_word}".encode()
        ).hexdigest()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(vocab_file={self.vocab_file!r}, do_lower_case={self.do_lower_case}, "
                f"vocab_size={self.vocab_size})")

    # ---- ids of the special tokens --------------------------------------------------------------
    @property
    def pad_id(self) -> int:
        return self.vocab["[PAD]"]

    @property
    def unk_id(self) -> int:
        return self.vocab["[UNK]"]

    @property
    def cls_id(self) -> int:
        return self.vocab["[CLS]"]

    @property
    def sep_id(self) -> int:
        return self.vocab["[SEP]"]

    @property
    def mask_id(self) -> int:
        return self.vocab["[MASK]"]

    @property
    def bos_id(self) -> int:
        return self.cls_id

    @property
    def eos_id(self) -> int:
        return self.sep_id

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    # ---- TokenizerSpec --------------------------------------------------------------------------
    def text_to_tokens(self, text: str) -> list[str]:
        return self.backend.encode(text, add_special_tokens=False).tokens

    def text_to_ids(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        unk = self.unk_id
        return [self.vocab.get(t, unk) for t in tokens]

    def ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        try:
            return [self._inv_vocab[int(i)] for i in ids]
        except KeyError as e:
            raise ValueError(f"token id {e.args[0]} is outside the vocabulary of {self.vocab_file} "
                             f"(size {self.vocab_size})") from None

    def tokens_to_text(self, tokens: Sequence[str]) -> str:
        return " ".join(tokens).replace(" ##", "").strip()

    def ids_to_text(self, ids: Sequence[int]) -> str:
        special = set(SPECIAL_TOKENS.values())
        return self.tokens_to_text([t for t in self.ids_to_tokens(ids) if t not in special])

    # ---- with offsets, one or many texts --------------------------------------------------------
    def encode(self, text: str, pair: str | None = None, add_special_tokens: bool = False) -> Encoding:
        """A Rust `Encoding`: `.ids`, `.tokens`, `.offsets` (character spans in `text`), `.type_ids`."""
        return self.backend.encode(text, pair, add_special_tokens=add_special_tokens)

    def encode_batch(self, texts: Sequence[str], add_special_tokens: bool = False) -> list[Encoding]:
        """Tokenizes in parallel Rust threads; the fast path of SQuAD feature creation."""
        return self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)


# NeMo's name for the same tokenizer, so recipes written for NeMo read unchanged.
NemoBertTokenizer = BertWordPieceTokenizer
