"""The interface every nmod_nlp tokenizer offers, so data layers never depend on one library."""
from __future__ import annotations

from abc import ABC, abstractmethod

__all__ = ["TokenizerSpec"]


class TokenizerSpec(ABC):
    """What data layers may ask of a tokenizer (the same names NeMo's `TokenizerSpec` used)."""

    @abstractmethod
    def text_to_tokens(self, text: str) -> list[str]: ...

    @abstractmethod
    def tokens_to_text(self, tokens: list[str]) -> str: ...

    @abstractmethod
    def tokens_to_ids(self, tokens: list[str]) -> list[int]: ...

    @abstractmethod
    def ids_to_tokens(self, ids: list[int]) -> list[str]: ...

    @abstractmethod
    def text_to_ids(self, text: str) -> list[int]: ...

    @abstractmethod
    def ids_to_text(self, ids: list[int]) -> str: ...

    @property
    @abstractmethod
    def vocab_size(self) -> int: ...

    @property
    @abstractmethod
    def fingerprint(self) -> str:
        """A stable hash of everything that changes the tokenizer's output (for feature caches)."""
