"""SQuAD exact match and F1, computed as the official `evaluate-v1.1.py` and `evaluate-v2.0.py` do.

The two official scripts differ in small ways that change numbers, so both are kept, each faithful:

- Both normalise an answer by lower-casing, removing ASCII punctuation (`string.punctuation`),
  removing the words a/an/the, and collapsing whitespace; a prediction scores the maximum over the
  gold answers.
- v1.1: F1 is 0 when prediction and gold share no token, even when both are empty. A question with
  no prediction scores 0 and still counts in the total.
- v2.0: an unanswerable question's gold is [""]; gold answers that normalise to "" are dropped; F1
  is 1 when both token lists are empty, 0 when one is. The totals count predicted questions only.
  With `na_probs` (the `--na-prob-file`, here null_odds.json) a question whose na_prob exceeds
  `na_prob_thresh` counts as predicted "no answer", and best_exact/best_f1 report the best threshold.
"""
from __future__ import annotations

import re
import string
from collections import Counter, OrderedDict
from typing import Callable, Optional, Sequence

from nmod.core.errors import DataFormatError

__all__ = ["normalize_answer", "exact_match_score", "f1_score", "compute_exact", "compute_f1",
           "evaluate_v1", "evaluate_v2", "evaluate"]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """Lower case, drop punctuation, drop a/an/the, collapse whitespace (in this order)."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCTUATION)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


# ---- v1.1 --------------------------------------------------------------------------------------------
def exact_match_score(prediction: str, ground_truth: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_score(prediction: str, ground_truth: str) -> float:
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(ground_truth).split()
    num_same = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if num_same == 0:
        return 0
    precision = num_same / len(pred_tokens)
    recall = num_same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _max_over_ground_truths(metric: Callable, prediction: str, ground_truths: Sequence[str], qid: str):
    if not ground_truths:
        raise DataFormatError(f"question {qid} has no gold answers; SQuAD v1.1 scoring needs at least one "
                         f"(is this v2.0 data? score it with version_2_with_negative=True)")
    return max(metric(prediction, gt) for gt in ground_truths)


def evaluate_v1(dataset: list, predictions: dict) -> dict:
    """`dataset` is the file's `data` list; `predictions` maps id -> text. Percentages, as the script."""
    f1 = exact_match = total = 0
    missing = []
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    missing.append(qa["id"])
                    continue
                golds = [a["text"] for a in qa["answers"]]
                prediction = predictions[qa["id"]]
                exact_match += _max_over_ground_truths(exact_match_score, prediction, golds, qa["id"])
                f1 += _max_over_ground_truths(f1_score, prediction, golds, qa["id"])
    if total == 0:
        raise DataFormatError("the SQuAD data set holds no questions to score")
    result = {"exact_match": 100.0 * exact_match / total, "f1": 100.0 * f1 / total}
    if missing:  # the official script prints each and scores them 0
        result["missing_predictions"] = len(missing)
    return result


# ---- v2.0 --------------------------------------------------------------------------------------------
def _get_tokens(s: str) -> list[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold: str, a_pred: str) -> int:
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    gold_toks = _get_tokens(a_gold)
    pred_toks = _get_tokens(a_pred)
    num_same = sum((Counter(gold_toks) & Counter(pred_toks)).values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        return int(gold_toks == pred_toks)  # no answer: 1 if both say so, else 0
    if num_same == 0:
        return 0
    precision = num_same / len(pred_toks)
    recall = num_same / len(gold_toks)
    return 2 * precision * recall / (precision + recall)


def _qid_to_has_ans(dataset: list) -> "OrderedDict[str, bool]":
    return OrderedDict((qa["id"], bool(qa["answers"]))
                       for article in dataset for p in article["paragraphs"] for qa in p["qas"])


def _raw_scores(dataset: list, preds: dict) -> tuple[dict, dict, list]:
    exact, f1, missing = {}, {}, []
    for article in dataset:
        for p in article["paragraphs"]:
            for qa in p["qas"]:
                qid = qa["id"]
                golds = [a["text"] for a in qa["answers"] if normalize_answer(a["text"])] or [""]
                if qid not in preds:
                    missing.append(qid)
                    continue
                exact[qid] = max(compute_exact(a, preds[qid]) for a in golds)
                f1[qid] = max(compute_f1(a, preds[qid]) for a in golds)
    return exact, f1, missing


def _apply_no_ans_threshold(scores: dict, na_probs: dict, qid_to_has_ans: dict, thresh: float) -> dict:
    return {qid: (float(not qid_to_has_ans[qid]) if na_probs[qid] > thresh else s) for qid, s in scores.items()}


def _eval_dict(exact: dict, f1: dict, qid_list: Optional[list] = None) -> "OrderedDict":
    if not qid_list:
        total = len(exact)
        return OrderedDict([("exact", 100.0 * sum(exact.values()) / total),
                            ("f1", 100.0 * sum(f1.values()) / total), ("total", total)])
    total = len(qid_list)
    return OrderedDict([("exact", 100.0 * sum(exact[k] for k in qid_list) / total),
                        ("f1", 100.0 * sum(f1[k] for k in qid_list) / total), ("total", total)])


def _best_thresh(preds: dict, scores: dict, na_probs: dict, qid_to_has_ans: dict) -> tuple[float, float]:
    """Sweep the threshold up through the na_probs: every question starts as "no answer" (scoring 1
    if it has none); passing its na_prob turns it into its prediction."""
    num_no_ans = sum(1 for k in qid_to_has_ans if not qid_to_has_ans[k])
    cur = best = num_no_ans
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if qid_to_has_ans[qid]:
            diff = scores[qid]
        else:
            diff = -1 if preds[qid] else 0
        cur += diff
        if cur > best:
            best, best_thresh = cur, na_probs[qid]
    return 100.0 * best / len(scores), best_thresh


def evaluate_v2(dataset: list, predictions: dict, na_probs: Optional[dict] = None,
                na_prob_thresh: float = 1.0) -> "OrderedDict":
    """The official v2.0 result: exact, f1, total, HasAns_*, NoAns_* and, with na_probs, best_*.

    The official script crashes with a KeyError when a question lacks a prediction; this raises a
    ValueError that lists them instead.
    """
    qid_to_has_ans = _qid_to_has_ans(dataset)
    if not qid_to_has_ans:
        raise DataFormatError("the SQuAD data set holds no questions to score")
    exact_raw, f1_raw, missing = _raw_scores(dataset, predictions)
    if missing:
        raise DataFormatError(f"{len(missing)} of {len(qid_to_has_ans)} questions have no prediction (e.g. "
                         f"{missing[:3]}); SQuAD v2.0 scoring needs one for every question")
    have_na_probs = na_probs is not None
    if not have_na_probs:
        na_probs = {k: 0.0 for k in predictions}
    exact = _apply_no_ans_threshold(exact_raw, na_probs, qid_to_has_ans, na_prob_thresh)
    f1 = _apply_no_ans_threshold(f1_raw, na_probs, qid_to_has_ans, na_prob_thresh)
    out = _eval_dict(exact, f1)
    has_ans = [k for k, v in qid_to_has_ans.items() if v]
    no_ans = [k for k, v in qid_to_has_ans.items() if not v]
    for prefix, qids in (("HasAns", has_ans), ("NoAns", no_ans)):
        if qids:
            for k, v in _eval_dict(exact, f1, qid_list=qids).items():
                out[f"{prefix}_{k}"] = v
    if have_na_probs:
        out["best_exact"], out["best_exact_thresh"] = _best_thresh(predictions, exact_raw, na_probs, qid_to_has_ans)
        out["best_f1"], out["best_f1_thresh"] = _best_thresh(predictions, f1_raw, na_probs, qid_to_has_ans)
    return out


def evaluate(dataset: list, predictions: dict, version_2_with_negative: bool = False,
             na_probs: Optional[dict] = None) -> dict:
    """The official result for the data's version, plus `exact_match` and `f1` keys in both versions so
    loggers can read one name."""
    if not version_2_with_negative:
        return evaluate_v1(dataset, predictions)
    out = dict(evaluate_v2(dataset, predictions, na_probs))
    out["exact_match"] = out["exact"]
    return out
