"""Punctuation and capitalization in NeMo 0.11's format: `text_{split}.txt` + `labels_{split}.txt`,
two characters of label per word (the punctuation that follows it, then `O` or `U`)."""
from .data_layer import PunctCapitDataLayer
from .reader import (
                     CAPIT_LABEL_IDS_FILE,
                     PUNCT_LABEL_IDS_FILE,
                     PunctCapitData,
                     PunctCapitFormatError,
                     punctuate,
                     read_punct_capit_files,
)

__all__ = ["PunctCapitDataLayer", "read_punct_capit_files", "PunctCapitData", "PunctCapitFormatError", "punctuate",
           "PUNCT_LABEL_IDS_FILE", "CAPIT_LABEL_IDS_FILE"]
