"""Sentence and sentence-pair classification (GLUE, text classification) from a model folder.

    from nmod_nlp.inference import TextClassifier

    clf = TextClassifier.from_model_dir("work_dir/glue/model")
    clf("a gripping, funny film")                      # {'label': '1', 'score': 0.97}
    clf(("The cat sat.", "A cat was sitting."))        # a pair, for MRPC, RTE, MNLI, ...
    TextClassifier.from_model_dir("work_dir/sts-b/model")(("A man plays.", "A man is playing."))
    # {'score': 4.21}: STS-B is a regression, its score the predicted similarity

Texts become features exactly as the recipes' data layers make them (``encode_sentences``: the
run's ``max_seq_length``, BERT's longest-first pair truncation), so a dev row gets the prediction
the recipe's evaluation wrote.
"""
from __future__ import annotations

from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch

from nmod.core.errors import ConfigError, DataFormatError
from nmod.progress import progress

from ..data.batching import PadCollate
from ..data.glue.features import encode_sentences
from ._base import Predictor, as_list

__all__ = ["TextClassifier", "text_inputs", "glue_file_inputs"]

Text = Union[str, Sequence[str]]  # one sentence, or a pair (text_a, text_b)


class TextClassifier(Predictor):
    """Labels (with their probability) or regression scores for sentences and sentence pairs.

    ``__call__(text)``: one sentence or one ``(text_a, text_b)`` pair; ``predict(texts)``: many, in
    order. A classifier returns ``{"label", "score", "scores"}`` (``scores``: every label's
    probability), a regression head (STS-B) ``{"score"}``.
    """

    TASKS = ("glue", "text_classification")

    def __init__(self, model, batch_size: int = 32, device: Optional[str] = None, precision: str = "fp32",
                 runtime: str = "torch"):
        super().__init__(model, batch_size, device, precision, runtime)
        self.regression = self.head.output_ports.get("preds") is not None
        self.label_names = [] if self.regression else self.labels("labels")
        self.max_seq_length = int(self.setting("max_seq_length", 128))

    def __call__(self, text: Text) -> dict:
        return self.predict([text])[0]

    @torch.no_grad()
    def predict(self, texts: Iterable[Text]) -> list[dict]:
        texts = as_list(texts, str)
        if not texts:
            return []
        pairs = [isinstance(t, (tuple, list)) for t in texts]
        if any(pairs) and not all(pairs):
            raise DataFormatError("pass either sentences or (text_a, text_b) pairs, not both in one call")
        for i, t in enumerate(texts):
            if pairs[i] and (len(t) != 2 or not all(isinstance(x, str) for x in t)):
                raise DataFormatError(f"input {i}: a pair is two texts (text_a, text_b), got {t!r}")
            if not pairs[i] and not isinstance(t, str):
                raise DataFormatError(f"input {i}: expected a text or a (text_a, text_b) pair, got {type(t).__name__}")
        texts_a = [t[0] if pairs[0] else t for t in texts]
        texts_b = [t[1] for t in texts] if pairs[0] else None
        features = encode_sentences(self.tokenizer, texts_a, texts_b, np.zeros(len(texts), dtype=np.int64),
                                    self.max_seq_length)
        collate = PadCollate((self.tokenizer.pad_id, 0, 0))
        scores = []
        for start in progress(range(0, len(features), self.batch_size), desc="infer", unit="batches"):
            rows = range(start, min(len(features), start + self.batch_size))
            ids = [torch.from_numpy(features.input_ids(i).astype(np.int64)) for i in rows]
            types = [(torch.arange(len(x)) >= int(features.segment_a_len[i])).long() for i, x in zip(rows, ids)]
            input_ids, type_ids, mask = collate(list(zip(ids, types, [torch.ones(len(x), dtype=torch.long)
                                                                      for x in ids])))
            (out,) = self.forward(input_ids, type_ids, mask)
            scores.append(out.float().cpu())
        return [self._result(row) for row in torch.cat(scores)]

    def _result(self, row: torch.Tensor) -> dict:
        if self.regression:
            return {"score": float(row)}
        probs = torch.softmax(row, dim=-1)
        best = int(probs.argmax())
        return {"label": self.label_names[best], "score": float(probs[best]),
                "scores": {name: float(p) for name, p in zip(self.label_names, probs)}}


def text_inputs(lines: Sequence[str], labelled_header: Optional[str] = None) -> list[Text]:
    """Texts from lines: a tab splits a pair. A first line equal to ``labelled_header`` (the text
    classification TSV's ``sentence<TAB>label``) marks a labelled file: the labels are dropped."""
    lines = list(lines)
    if labelled_header and lines and lines[0].strip().lower() == labelled_header:
        lines = [line.rsplit("\t", 1)[0] for line in lines[1:]]
    return [tuple(line.split("\t", 1)) if "\t" in line else line for line in lines]


def glue_file_inputs(classifier: TextClassifier, path: str, split: str) -> list[Text]:
    """The texts of a file in the GLUE download's format, as ``split`` of the folder's task."""
    from ..data.glue import get_task, read_glue_file

    task_name = classifier.setting("task_name")
    if not task_name:
        raise ConfigError(f"{classifier.model.path} records no GLUE task_name (a text-classification folder?); "
                          f"drop --glue_split and pass one text a line")
    task = get_task(task_name)
    examples = read_glue_file(path, task, split).examples
    return [(e.text_a, e.text_b) if task.is_pair else e.text_a for e in examples]
