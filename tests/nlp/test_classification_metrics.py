"""Metrics against scikit-learn and SciPy (test-only dependencies) on random data and edge cases."""
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from nmod_nlp.metrics import (GLUE_TASKS, classification_report, confusion_matrix, format_report, glue_metrics,
                              matthews_corrcoef, normalize_task_name, pearson_corr, rankdata, save_confusion_matrix,
                              spearman_corr)


@pytest.fixture(autouse=True)
def _no_warnings():
    """Every metric here must compute without a RuntimeWarning (0/0) or any other warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def random_pairs(seed, n=200, classes=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    p = np.where(rng.random(n) < 0.6, y, rng.integers(0, classes, n))  # better than chance
    return p, y


# ---- classification report vs scikit-learn --------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_report_matches_sklearn_on_random_data(seed):
    p, y = random_pairs(seed)
    r = classification_report(p, y, num_classes=4)
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, p))
    np.testing.assert_array_equal(r["confusion_matrix"], skm.confusion_matrix(y, p, labels=range(4)))
    P, R, F, S = skm.precision_recall_fscore_support(y, p, labels=range(4), zero_division=0)
    for c in range(4):
        row = r["per_class"][str(c)]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == \
            (pytest.approx(P[c]), pytest.approx(R[c]), pytest.approx(F[c]), S[c])
    for avg in ("macro", "micro", "weighted"):
        P, R, F, _ = skm.precision_recall_fscore_support(y, p, average=avg, zero_division=0)
        assert (r[avg]["precision"], r[avg]["recall"], r[avg]["f1"]) == \
            (pytest.approx(P), pytest.approx(R), pytest.approx(F))
    assert matthews_corrcoef(p, y) == pytest.approx(skm.matthews_corrcoef(y, p))


def test_class_never_predicted_has_precision_zero_not_nan():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 0, 1, 1, 1])  # class 2 never predicted
    r = classification_report(p, y, num_classes=3)
    assert r["per_class"]["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    F = skm.f1_score(y, p, average=None, zero_division=0)
    assert [r["per_class"][c]["f1"] for c in "012"] == pytest.approx(F)
    assert r["macro"]["f1"] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))
    assert r["weighted"]["f1"] == pytest.approx(skm.f1_score(y, p, average="weighted", zero_division=0))


def test_macro_average_skips_a_class_absent_from_labels_and_predictions():
    # num_classes=4 but class 3 occurs nowhere: listed with zeros, not averaged (as sklearn's report).
    y, p = np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1])
    r = classification_report(p, y, num_classes=4, label_names=["a", "b", "c", "d"])
    assert r["per_class"]["d"]["support"] == 0
    assert r["macro"]["f1"] == pytest.approx(skm.f1_score(y, p, average="macro", zero_division=0))


def test_hand_computed_report():
    # y = [1,1,1,0,0], p = [1,1,0,0,1]: class 1 tp=2 fp=1 fn=1 -> P=R=F1=2/3; class 0 tp=1 fp=1 fn=1 -> 1/2.
    r = classification_report([1, 1, 0, 0, 1], [1, 1, 1, 0, 0])
    assert r["accuracy"] == pytest.approx(3 / 5)
    assert r["per_class"]["1"]["f1"] == pytest.approx(2 / 3) and r["per_class"]["0"]["f1"] == pytest.approx(1 / 2)
    assert r["macro"]["f1"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert r["weighted"]["f1"] == pytest.approx((3 * 2 / 3 + 2 * 1 / 2) / 5)
    np.testing.assert_array_equal(r["confusion_matrix"], [[1, 1], [1, 2]])


def test_scores_are_argmaxed_and_bad_ids_are_named():
    scores = np.array([[0.1, 0.9], [2.0, -1.0], [0.3, 0.4]])
    np.testing.assert_array_equal(confusion_matrix(scores, [1, 0, 0]), [[1, 1], [0, 1]])
    with pytest.raises(ValueError, match="class id 5 is outside 0..2"):
        confusion_matrix([0, 5], [0, 1], num_classes=3)
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        confusion_matrix([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        classification_report([], [])
    with pytest.raises(ValueError, match="integer class ids"):
        classification_report([0.5, 1.0], [0, 1])


def test_format_report_and_confusion_matrix_file(tmp_path):
    p, y = random_pairs(0, n=50, classes=3)
    r = classification_report(p, y, label_names=["neg", "neu", "pos"])
    text = format_report(r)
    assert "precision" in text and "macro avg" in text and "weighted avg" in text and "neu" in text
    assert f"{r['accuracy']:.4f}" in text
    path, *picture = save_confusion_matrix(p, y, 3, tmp_path / "cm.tsv", label_names=["neg", "neu", "pos"])
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert rows[0] == ["true\\predicted", "neg", "neu", "pos"]
    np.testing.assert_array_equal(np.array([row[1:] for row in rows[1:]], dtype=int), r["confusion_matrix"])
    # the picture comes with the optional `plots` extra (matplotlib), which the test extra installs
    pytest.importorskip("matplotlib")
    assert picture == [tmp_path / "cm.png"] and picture[0].read_bytes().startswith(b"\x89PNG")


# ---- MCC, F1 -------------------------------------------------------------------------------------
def test_constant_predictions_give_mcc_zero():
    y = np.array([0, 1, 1, 0, 1])
    for const in (0, 1):
        p = np.full_like(y, const)
        assert matthews_corrcoef(p, y) == 0.0 == skm.matthews_corrcoef(y, p)
    assert matthews_corrcoef([1, 1, 1], [1, 1, 1]) == 0.0  # one class only: undefined -> 0


def test_hand_computed_mcc():
    # tp=2 tn=1 fp=1 fn=1: (2*1 - 1*1) / sqrt(3*3*2*2) = 1/6
    assert matthews_corrcoef([1, 1, 0, 0, 1], [1, 1, 1, 0, 0]) == pytest.approx(1 / 6)


# ---- correlations vs SciPy -----------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(5))
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 5, 100)
    p = y + rng.normal(0, 1.5, 100)
    assert pearson_corr(p, y) == pytest.approx(stats.pearsonr(p, y)[0])
    assert spearman_corr(p, y) == pytest.approx(stats.spearmanr(p, y)[0])


def test_spearman_with_ties_uses_average_ranks():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 6, 80).astype(float)  # STS-B gold scores are often whole numbers: many ties
    p = np.round(y + rng.normal(0, 1, 80))  # and so are rounded predictions
    np.testing.assert_allclose(rankdata(p), stats.rankdata(p, method="average"))
    assert spearman_corr(p, y) == pytest.approx(stats.spearmanr(p, y)[0])
    np.testing.assert_allclose(rankdata([3, 1, 3, 2]), [3.5, 1, 3.5, 2])


def test_constant_input_gives_correlation_zero():
    assert pearson_corr([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0
    assert spearman_corr([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        pearson_corr([1.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        pearson_corr([1.0, np.nan], [1.0, 2.0])


# ---- GLUE ----------------------------------------------------------------------------------------
def test_glue_metrics_per_task():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    p = np.where(rng.random(60) < 0.7, y, 1 - y)
    assert glue_metrics("CoLA", p, y) == {"mcc": pytest.approx(skm.matthews_corrcoef(y, p))}
    m = glue_metrics("MRPC", p, y)
    acc, f1 = skm.accuracy_score(y, p), skm.f1_score(y, p)
    assert m == {"acc": pytest.approx(acc), "f1": pytest.approx(f1), "acc_and_f1": pytest.approx((acc + f1) / 2)}
    assert set(glue_metrics("qqp", p, y)) == {"acc", "f1", "acc_and_f1"}
    for task in ("sst-2", "mnli", "qnli", "rte", "wnli", "SST-2"):
        assert glue_metrics(task, p, y) == {"acc": pytest.approx(acc)}
    logits = np.stack([1 - p, p], axis=1).astype(float)  # arg-max = p
    assert glue_metrics("sst-2", logits, y)["acc"] == pytest.approx(acc)
    s = rng.uniform(0, 5, 40)
    t = s + rng.normal(0, 1, 40)
    m = glue_metrics("STS-B", t[:, None], s)
    r, rho = stats.pearsonr(t, s)[0], stats.spearmanr(t, s)[0]
    assert m == {"pearson": pytest.approx(r), "spearmanr": pytest.approx(rho), "corr": pytest.approx((r + rho) / 2)}


def test_task_names():
    for folder, name in [("CoLA", "cola"), ("SST-2", "sst-2"), ("sst2", "sst-2"), ("STS-B", "sts-b"),
                         ("MRPC", "mrpc"), ("QQP", "qqp"), ("MNLI", "mnli"), ("QNLI", "qnli"), ("RTE", "rte"),
                         ("WNLI", "wnli")]:
        assert normalize_task_name(folder) == name and name in GLUE_TASKS
    with pytest.raises(ValueError, match="unknown GLUE task 'squad'"):
        normalize_task_name("squad")

