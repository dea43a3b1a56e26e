"""The token-level evaluator: first sub-tokens only, rank-by-rank order, conlleval scores, predictions.conll."""
from types import SimpleNamespace

import pytest
import torch

from nmod_nlp.callbacks import token_classification_evaluator_callback
from nmod_nlp.metrics import conlleval_lines

LABELS = ["O", "B-LOC", "B-PER", "I-PER"]


class FakeActions:
    """Two ranks' batches, as `iterate_eval` yields them: values[name][rank]."""

    is_main = True

    def __init__(self, batches):
        self.batches = batches

    def iterate_eval(self, tensors):
        yield from self.batches


def one_hot(ids):
    return torch.nn.functional.one_hot(torch.tensor(ids), len(LABELS)).float()


def test_scores_first_subtokens_in_file_order_and_writes_conll(tmp_path):
    t = {k: SimpleNamespace(name=k) for k in ("logits", "labels", "mask")}
    # rank 0: sentence "Peter Blackburn" as [CLS] peter black ##burn [SEP]; rank 1: "in Paris"
    rank0 = {"logits": one_hot([[0, 2, 3, 0, 0]]), "labels": torch.tensor([[0, 2, 3, 3, 0]]),
             "mask": torch.tensor([[0, 1, 1, 0, 0]])}
    rank1 = {"logits": one_hot([[0, 0, 2, 0]]), "labels": torch.tensor([[0, 0, 1, 0]]),
             "mask": torch.tensor([[0, 1, 1, 0]])}
    batch = {t[k].name: [rank0[k], rank1[k]] for k in t}
    cb = token_classification_evaluator_callback(
        t["logits"], t["labels"], t["mask"], LABELS, sentences=[["Peter", "Blackburn"], ["in", "Paris"]],
        predictions_file=tmp_path / "predictions.conll", entity_level=True, print_report=False)
    metrics = cb.run(FakeActions([batch]))
    text = (tmp_path / "predictions.conll").read_text()
    assert text == "Peter B-PER B-PER\nBlackburn I-PER I-PER\n\nin O O\nParis B-LOC B-PER\n\n"
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["entity_precision"] == pytest.approx(50.0) and metrics["entity_recall"] == pytest.approx(50.0)
    assert conlleval_lines(text.splitlines())["f1"] == pytest.approx(metrics["entity_f1"])


def test_sentences_that_do_not_match_the_data_are_an_error(tmp_path):
    t = {k: SimpleNamespace(name=k) for k in ("logits", "labels", "mask")}
    batch = {"logits": [one_hot([[0, 1, 0]])], "labels": [torch.tensor([[0, 1, 0]])],
             "mask": [torch.tensor([[0, 1, 0]])]}
    cb = token_classification_evaluator_callback(t["logits"], t["labels"], t["mask"], LABELS,
                                                 sentences=[["a", "b"]], print_report=False)
    with pytest.raises(ValueError, match="2 words but 1 first sub-tokens"):
        cb.run(FakeActions([batch]))
