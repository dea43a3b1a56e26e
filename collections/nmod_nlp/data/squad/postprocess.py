"""Start/end logits of every window -> one answer string per question, as Google's BERT `run_squad.py`.

For each question, the `n_best_size` best start and end positions of each of its windows are paired;
a pair survives when both ends are context tokens of that window, end >= start, it is at most
`max_answer_length` tokens long, and its start token has its "max context" in this window (of the
windows holding a token, the one where it sits farthest from an edge; so a span near a window's edge
is scored in the window that sees the most around it). Spans are mapped to the original context
through the tokenizer's character offsets, which undoes lower-casing and accent stripping exactly.

SQuAD v2.0: the null score is `start_logit[CLS] + end_logit[CLS]`, minimised over windows; the
question is predicted unanswerable when null score - best span score > `null_score_diff_threshold`,
and that difference is written to `null_odds.json` (the official script's `--na-prob-file`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .features import SquadFeatures

__all__ = ["SquadPredictions", "postprocess_predictions", "write_predictions", "max_context_mask"]


@dataclass
class SquadPredictions:
    predictions: dict = field(default_factory=dict)  # id -> answer text ("" = no answer)
    nbest: dict = field(default_factory=dict)  # id -> [{text, probability, start_logit, end_logit}]
    null_odds: dict = field(default_factory=dict)  # id -> null score - best span score (v2.0 only)
    # id -> (start, end) characters of the prediction in its context, context[start:end] == the
    # prediction; None for "" (no answer). Not written to the prediction files.
    spans: dict = field(default_factory=dict)


def max_context_mask(doc_starts: Sequence[int], doc_lens: Sequence[int]) -> list[np.ndarray]:
    """For each window of one context, which of its tokens have their maximum context there.

    Score of token t in a window [s, s+n): min(t - s, s+n-1 - t) + 0.01 n; the first window with the
    highest score wins, as in BERT's `_check_is_max_context`.
    """
    starts = np.asarray(doc_starts, dtype=np.int64)
    lens = np.asarray(doc_lens, dtype=np.int64)
    if len(starts) == 1:
        return [np.ones(int(lens[0]), dtype=bool)]
    total = int((starts + lens).max()) if len(starts) else 0
    t = np.arange(total)
    ends = starts + lens - 1
    inside = (t[None, :] >= starts[:, None]) & (t[None, :] <= ends[:, None])
    score = np.minimum(t[None, :] - starts[:, None], ends[:, None] - t[None, :]) + 0.01 * lens[:, None]
    score = np.where(inside, score, -np.inf)
    best = np.argmax(score, axis=0)  # first maximum, like BERT's strict '>' comparison
    return [best[s:s + n] == w for w, (s, n) in enumerate(zip(starts.tolist(), lens.tolist()))]


def _top_k(x: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest values, largest first; ties keep the lower index first (stable)."""
    return np.argsort(-x, kind="stable")[:k]


def _softmax(scores: list[float]) -> list[float]:
    if not scores:
        return []
    x = np.asarray(scores, dtype=np.float64)
    e = np.exp(x - x.max())
    return (e / e.sum()).tolist()


def postprocess_predictions(
    examples: Sequence,
    contexts: Sequence[str],
    features: SquadFeatures,
    unique_ids: Sequence[int],
    start_logits: Sequence,
    end_logits: Sequence,
    version_2_with_negative: bool = False,
    n_best_size: int = 20,
    max_answer_length: int = 30,
    null_score_diff_threshold: float = 0.0,
) -> SquadPredictions:
    """Answers for every example that has at least one result.

    `unique_ids[i]`, `start_logits[i]`, `end_logits[i]` are one feature's results; logits may be
    padded rows (only the feature's own length is read). Results may come in any order, and a
    feature seen twice (a distributed sampler pads with repeats) counts once.
    """
    if not (len(unique_ids) == len(start_logits) == len(end_logits)):
        raise ValueError(f"got {len(unique_ids)} unique_ids but {len(start_logits)} start and {len(end_logits)} "
                         f"end logit rows; one row per feature is expected")
    row_of = {}
    uid_base = int(features.unique_ids[0]) if len(features) else 0
    for row, uid in enumerate(np.asarray(unique_ids, dtype=np.int64).reshape(-1).tolist()):
        f = uid - uid_base
        if not 0 <= f < len(features) or int(features.unique_ids[f]) != uid:
            raise ValueError(f"unique_id {uid} is not a feature of this data set "
                             f"(ids {uid_base}..{uid_base + len(features) - 1})")
        row_of[f] = row

    by_example: dict[int, list[int]] = {}
    for f in range(len(features)):
        by_example.setdefault(int(features.example_index[f]), []).append(f)

    out = SquadPredictions()
    for e, feats in by_example.items():
        if not any(f in row_of for f in feats):
            continue
        ex = examples[e]
        context = contexts[ex.context_index]
        ctx_offsets = features.context_offsets(ex.context_index)
        max_ctx = max_context_mask(features.doc_start[feats], features.doc_len[feats])
        candidates = []  # (score, start_logit, end_logit, char_start, char_end)
        null = None  # (score, start_logit, end_logit)
        for f, is_max in zip(feats, max_ctx):
            if f not in row_of:
                continue
            row = row_of[f]
            a, n, ds = int(features.segment_a_len[f]), int(features.doc_len[f]), int(features.doc_start[f])
            length = a + n + 1
            sl = np.asarray(start_logits[row], dtype=np.float64).reshape(-1)[:length]
            el = np.asarray(end_logits[row], dtype=np.float64).reshape(-1)[:length]
            if len(sl) < length or len(el) < length:
                raise ValueError(f"logits of feature {int(features.unique_ids[f])} have {min(len(sl), len(el))} "
                                 f"positions but the feature has {length} tokens")
            if version_2_with_negative:
                score = sl[0] + el[0]
                if null is None or score < null[0]:
                    null = (score, sl[0], el[0])
            s_idx = _top_k(sl, n_best_size)
            e_idx = _top_k(el, n_best_size)
            s, t = np.meshgrid(s_idx, e_idx, indexing="ij")
            s, t = s.reshape(-1), t.reshape(-1)
            ok = (s >= a) & (t >= a) & (s < a + n) & (t < a + n) & (t >= s) & (t - s + 1 <= max_answer_length)
            ok[ok] &= is_max[s[ok] - a]
            for si, ti in zip(s[ok].tolist(), t[ok].tolist()):
                candidates.append((sl[si] + el[ti], sl[si], el[ti],
                                   int(ctx_offsets[ds + si - a, 0]), int(ctx_offsets[ds + ti - a, 1])))
        # Stable sort by score: equal scores keep window-then-start-then-end order.
        order = sorted(range(len(candidates)), key=lambda i: -candidates[i][0])
        entries, seen = [], set()
        null_added = False
        ranked = [candidates[i] for i in order]
        if null is not None:
            # The null span competes in the ranking like any span, as in run_squad.py.
            pos = next((i for i, c in enumerate(ranked) if c[0] < null[0]), len(ranked))
            ranked.insert(pos, None)
        for c in ranked:
            if len(entries) >= n_best_size:
                break
            if c is None:
                entries.append(("", null[1], null[2], None))
                seen.add("")
                null_added = True
                continue
            text = context[c[3]:c[4]]
            if text in seen:
                continue
            seen.add(text)
            entries.append((text, c[1], c[2], (c[3], c[4])))
        if version_2_with_negative and not null_added and null is not None and "" not in seen:
            entries.append(("", null[1], null[2], None))
        if not entries:
            entries.append(("", 0.0, 0.0, None))
        probs = _softmax([s + t for _, s, t, _ in entries])
        out.nbest[ex.qas_id] = [
            {"text": text, "probability": p, "start_logit": float(s), "end_logit": float(t)}
            for (text, s, t, _), p in zip(entries, probs)
        ]
        best_non_null = next((x for x in entries if x[0]), None)
        if not version_2_with_negative:
            out.predictions[ex.qas_id] = entries[0][0]
            out.spans[ex.qas_id] = entries[0][3]
            continue
        if best_non_null is None:
            diff = float("inf")
        else:
            diff = float(null[0] - best_non_null[1] - best_non_null[2]) if null is not None else float("-inf")
        out.null_odds[ex.qas_id] = diff
        out.predictions[ex.qas_id] = "" if diff > null_score_diff_threshold else best_non_null[0]
        out.spans[ex.qas_id] = None if diff > null_score_diff_threshold else best_non_null[3]
    return out


def _write_json(path: str | Path, obj) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=4, ensure_ascii=False)
        f.write("\n")


def write_predictions(preds: SquadPredictions, output_prediction_file: str | Path,
                      output_nbest_file: Optional[str | Path] = None,
                      output_null_log_odds_file: Optional[str | Path] = None) -> None:
    """predictions.json (id -> text), nbest_predictions.json and, for v2.0, null_odds.json."""
    _write_json(output_prediction_file, preds.predictions)
    if output_nbest_file:
        _write_json(output_nbest_file, preds.nbest)
    if output_null_log_odds_file:
        _write_json(output_null_log_odds_file, preds.null_odds)
