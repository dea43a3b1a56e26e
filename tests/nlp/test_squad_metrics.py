"""SQuAD EM/F1 against hand-worked numbers and the official scripts' rules on their edge cases."""
import pytest

from nmod_nlp.data.squad.metrics import (compute_exact, compute_f1, evaluate, evaluate_v1, evaluate_v2,
                                         exact_match_score, f1_score, normalize_answer)


def dataset(*qas):
    """One article, one paragraph per question: [(id, [gold texts]), ...]."""
    return [{"title": "t", "paragraphs": [
        {"context": "ctx", "qas": [{"id": qid, "question": "q?", "answers": [{"text": t, "answer_start": 0}
                                                                            for t in golds]}]}
        for qid, golds in qas]}]


@pytest.mark.parametrize("raw, normalized", [
    ("The  Quick, brown fox!", "quick brown fox"),
    ("an apple a day", "apple day"),
    ("theater anthem", "theater anthem"),  # articles only as whole words
    ("U.S.A.", "usa"),
    ("rock-and-roll", "rockandroll"),  # punctuation is deleted, not replaced by a space
    ("“Quoted” — text", "“quoted” — text"),  # only ASCII punctuation (string.punctuation) is removed
    ("Café\tMÜLLER\n", "café müller"),
    ("", ""),
])
def test_normalize_answer(raw, normalized):
    assert normalize_answer(raw) == normalized


def test_hand_worked_f1():
    # "cat sat on mat" vs "cat on mat": 3 common tokens, precision 3/4, recall 3/3.
    assert f1_score("the cat sat on the mat", "a cat on a mat") == pytest.approx(2 * 0.75 * 1 / 1.75)
    assert compute_f1("a cat on a mat", "the cat sat on the mat") == pytest.approx(6 / 7)
    # Repeated tokens count as many times as both sides have them.
    assert f1_score("red red red", "red red blue") == pytest.approx(2 * (2 / 3) * (2 / 3) / (4 / 3))
    assert exact_match_score("The Eiffel Tower.", "eiffel tower")
    assert compute_exact("The Eiffel Tower.", "eiffel tower") == 1


def test_empty_prediction_v1_and_v2_differ_as_the_official_scripts():
    # v1.1: F1 is 0 without a common token, even for two empty answers; EM compares normalised strings.
    assert f1_score("", "") == 0
    assert exact_match_score("", "") is True
    assert f1_score("", "Paris") == 0
    # v2.0: no-answer agrees with no-answer (F1 1), disagrees otherwise (0). "the" normalises to nothing.
    assert compute_f1("", "") == 1
    assert compute_f1("the", "") == 1
    assert compute_f1("Paris", "") == 0
    assert compute_f1("", "Paris") == 0


def test_evaluate_v1_hand_worked():
    data = dataset(("q1", ["Paris", "paris, France"]), ("q2", ["the cat on a mat"]), ("q3", ["1999"]))
    preds = {"q1": "Paris!", "q2": "cat sat on the mat"}  # q3 unanswered: scores 0, still counted
    out = evaluate_v1(data, preds)
    assert out["exact_match"] == pytest.approx(100 * 1 / 3)
    assert out["f1"] == pytest.approx(100 * (1 + 6 / 7 + 0) / 3)
    assert out["missing_predictions"] == 1
    # max over gold answers: the second gold is the better F1 match here.
    assert evaluate_v1(dataset(("q", ["Paris", "Paris France today"])), {"q": "France today"})["f1"] == \
        pytest.approx(100 * 2 * 1 * (2 / 3) / (5 / 3))
    with pytest.raises(ValueError, match="question q has no gold answers"):
        evaluate_v1(dataset(("q", [])), {"q": ""})


V2 = dataset(("q1", ["Paris"]), ("q2", ["the Eiffel Tower"]), ("q3", []), ("q4", []))
V2_PREDS = {"q1": "Paris", "q2": "Eiffel Tower in Paris", "q3": "", "q4": "London"}


def test_evaluate_v2_breakdown_hand_worked():
    out = evaluate_v2(V2, V2_PREDS)
    # q2: "eiffel tower" vs "eiffel tower in paris": P 2/4, R 2/2, F1 2/3.
    assert out == pytest.approx({
        "exact": 50.0, "f1": 100 * (1 + 2 / 3 + 1 + 0) / 4, "total": 4,
        "HasAns_exact": 50.0, "HasAns_f1": 100 * (1 + 2 / 3) / 2, "HasAns_total": 2,
        "NoAns_exact": 50.0, "NoAns_f1": 50.0, "NoAns_total": 2})
    assert list(out) == ["exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total",
                         "NoAns_exact", "NoAns_f1", "NoAns_total"]


def test_evaluate_v2_na_probs_threshold_and_best_threshold():
    na_probs = {"q1": 0.1, "q2": 0.3, "q3": 0.5, "q4": 1.5}
    out = evaluate_v2(V2, V2_PREDS, na_probs)
    # na_prob > 1.0 (the default na_prob_thresh) counts as "no answer": q4 becomes right.
    assert out["exact"] == pytest.approx(75.0)
    assert out["f1"] == pytest.approx(100 * (1 + 2 / 3 + 1 + 1) / 4)
    assert out["NoAns_exact"] == pytest.approx(100.0)
    # Sweep from "all no answer" (2 right): q1 +1 (3, thresh .1), q2 +0 EM / +2/3 F1, q3 +0, q4 -1.
    assert out["best_exact"] == pytest.approx(75.0) and out["best_exact_thresh"] == 0.1
    assert out["best_f1"] == pytest.approx(100 * (3 + 2 / 3) / 4) and out["best_f1_thresh"] == 0.3
    # A stricter na_prob_thresh changes the headline numbers only.
    strict = evaluate_v2(V2, V2_PREDS, na_probs, na_prob_thresh=0.2)  # q2, q3, q4 -> no answer
    assert strict["exact"] == pytest.approx(100 * (1 + 0 + 1 + 1) / 4)
    assert strict["best_f1"] == out["best_f1"]


def test_evaluate_v2_gold_that_normalises_to_empty_is_dropped():
    data = dataset(("q1", ["the", "Paris"]), ("q2", ["a", "an"]))
    out = evaluate_v2(data, {"q1": "", "q2": ""})
    # q1's only real gold is "Paris" (so "" is wrong); q2's golds all vanish, so it counts as no-answer.
    assert out["exact"] == pytest.approx(50.0)
    assert out["HasAns_total"] == 2 and "NoAns_total" not in out


def test_evaluate_v2_missing_prediction_is_a_clear_error():
    with pytest.raises(ValueError, match=r"1 of 4 questions have no prediction \(e.g. \['q4'\]\)"):
        evaluate_v2(V2, {k: v for k, v in V2_PREDS.items() if k != "q4"})


def test_evaluate_dispatches_by_version():
    assert evaluate(dataset(("q", ["Paris"])), {"q": "paris"}) == {"exact_match": 100.0, "f1": 100.0}
    out = evaluate(V2, V2_PREDS, version_2_with_negative=True)
    assert out["exact_match"] == out["exact"] == 50.0
