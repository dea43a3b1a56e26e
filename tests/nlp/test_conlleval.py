"""conlleval's entity counting on hand-built cases (each checked against the Perl script's rules by hand)."""
import pytest

from nmod_nlp.metrics import conlleval, conlleval_lines, format_conlleval
from nmod_nlp.metrics.conlleval import end_of_chunk, split_tag, start_of_chunk


def counts(gold, pred):
    r = conlleval([gold.split()], [pred.split()])
    return r["gold_chunks"], r["predicted_chunks"], r["correct_chunks"]


def test_split_tag_keeps_hyphens_in_the_type():
    assert split_tag("B-PER") == ("B", "PER") and split_tag("I-SOME-TYPE") == ("I", "SOME-TYPE")
    assert split_tag("O") == ("O", "") and split_tag("[") == ("[", "")


def test_iob2_and_iob1_spellings_of_the_same_entities_agree():
    iob2 = "B-PER I-PER O B-LOC O B-ORG"
    iob1 = "I-PER I-PER O I-LOC O I-ORG"
    assert counts(iob2, iob2) == (3, 3, 3)
    assert counts(iob1, iob2) == (3, 3, 3)  # an I- after O starts a chunk in either scheme
    assert counts(iob2, iob1) == (3, 3, 3)


def test_an_i_tag_starts_an_entity_after_o_or_after_another_type():
    assert counts("O B-LOC I-LOC", "O I-LOC I-LOC") == (1, 1, 1)
    assert counts("B-PER I-PER I-LOC", "B-PER I-PER B-LOC") == (2, 2, 2)  # I-LOC after PER: a new LOC chunk
    assert start_of_chunk("O", "I", "", "LOC") and start_of_chunk("I", "I", "PER", "LOC")
    assert not start_of_chunk("B", "I", "PER", "PER") and end_of_chunk("I", "I", "PER", "LOC")


def test_adjacent_entities_of_the_same_type():
    assert counts("I-PER B-PER", "I-PER B-PER") == (2, 2, 2)  # IOB1 needs B- only between same-type neighbours
    assert counts("B-PER B-PER", "B-PER I-PER") == (2, 1, 0)  # one long entity matches neither
    assert counts("B-PER B-PER", "B-PER O") == (2, 1, 1)


def test_start_end_and_type_must_all_match():
    assert counts("B-ORG I-ORG O", "B-ORG O O") == (1, 1, 0)  # ends early
    assert counts("B-ORG I-ORG O", "B-ORG I-ORG I-ORG") == (1, 1, 0)  # ends late
    assert counts("O B-ORG I-ORG", "B-ORG I-ORG I-ORG") == (1, 1, 0)  # starts early
    assert counts("B-ORG I-ORG", "B-MISC I-MISC") == (1, 1, 0)  # same span, other type
    assert counts("B-ORG I-ORG", "B-ORG I-MISC") == (1, 2, 0)  # the type changes inside: two chunks


def test_a_sentence_boundary_ends_every_chunk():
    r = conlleval([["O", "I-PER"], ["I-PER", "O"]], [["O", "I-PER"], ["I-PER", "O"]])
    assert (r["gold_chunks"], r["correct_chunks"]) == (2, 2)


def test_scores_in_percent_with_conlleval_report():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-PER"], ["B-ORG", "O", "B-MISC"]]
    r = conlleval(gold, pred)
    assert (r["gold_chunks"], r["predicted_chunks"], r["correct_chunks"]) == (3, 4, 2)
    assert r["precision"] == pytest.approx(50.0) and r["recall"] == pytest.approx(200 / 3)
    assert r["f1"] == pytest.approx(2 * 50 * (200 / 3) / (50 + 200 / 3))
    assert r["accuracy"] == pytest.approx(100 * 5 / 7)
    assert r["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "found": 0, "support": 1}
    assert format_conlleval(r).splitlines() == [
        "processed 7 tokens with 3 phrases; found: 4 phrases; correct: 2.",
        "accuracy:  71.43%; precision:  50.00%; recall:  66.67%; FB1:  57.14",
        "              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0",
        "             MISC: precision:   0.00%; recall:   0.00%; FB1:   0.00  1",
        "              ORG: precision: 100.00%; recall: 100.00%; FB1: 100.00  1",
        "              PER: precision:  50.00%; recall: 100.00%; FB1:  66.67  2",
    ]


def test_punctuation_tokens_in_the_file_format():
    lines = ["St. B-LOC B-LOC", "Louis I-LOC I-LOC", ", O O", "Jean-Pierre B-PER B-PER", "- O O", ". O B-MISC", "",
             "-X- -X- O O", "\" O O", "( O O", "U.S. B-LOC I-LOC", ") O O", ""]
    r = conlleval_lines(lines)
    assert r["tokens"] == 10  # blank lines and -X- boundaries are not tokens
    assert (r["gold_chunks"], r["predicted_chunks"], r["correct_chunks"]) == (3, 4, 3)
    assert r["per_type"]["MISC"]["found"] == 1


def test_bracket_chunks_are_one_token_long():
    assert counts("[ ] O", "[ ] O") == (2, 2, 2)
    with pytest.raises(ValueError, match="sentence 0: 2 gold tags but 1 predicted"):
        conlleval([["O", "O"]], [["O"]])


def test_iob_tagging_is_recognised_only_with_conllevals_outside_tag():
    from nmod_nlp.metrics import is_iob_tagging

    assert is_iob_tagging(["O", "B-PER", "I-PER", "E-LOC", "S-LOC"])
    assert not is_iob_tagging(["O", "B-PER", "city"])  # a plain label is not a chunk tag
    assert not is_iob_tagging(["NONE", "B-PER"], none_label="NONE")  # conlleval's outside tag is O
    assert not is_iob_tagging(["O", "X-PER"])
