"""Inference on raw text from a model folder, one predictor per task kind (``load_predictor`` picks it).

| folder ``task`` | predictor | in | out |
| --- | --- | --- | --- |
| ``squad`` | ``QuestionAnswerer`` | question + context | answer, character span, score |
| ``glue``, ``text_classification`` | ``TextClassifier`` | a sentence or a pair | label and score (a score for STS-B) |
| ``ner`` | ``TokenTagger`` | a sentence | a label per word |
| ``punctuation_capitalization`` | ``PunctuationCapitalizer`` | lower-case text | punctuated, capitalized text |
| ``intent_slot`` | ``IntentSlotTagger`` | a query | an intent, a slot per word |

``precision="int8"`` (``--precision int8`` in the ``*_infer.py`` scripts) runs the Linear layers in int8
on the CPU, ``precision="bf16"`` the forward under bf16 autocast (``inference.precision``);
``runtime="onnxruntime"`` (``--runtime onnxruntime``) serves the encoder and head as one ONNX graph from
ONNX Runtime, fp32 or int8 (``inference.runtime``).

Each reads only the folder (``nmod_nlp.model_folder``): no Megatron config, checkpoint or recipe flag.
"""
from __future__ import annotations

import os
from typing import Optional

from nmod.core.errors import ConfigError

from ..model_folder import load_model_folder
from ._base import Predictor
from .classification import TextClassifier, glue_file_inputs, text_inputs
from .question_answering import SQUAD_SETTINGS, QuestionAnswerer, _InMemorySquadDataset, squad_data  # noqa: F401
from .tagging import IntentSlotTagger, PunctuationCapitalizer, TokenTagger

__all__ = ["QuestionAnswerer", "SQUAD_SETTINGS", "TextClassifier", "TokenTagger", "PunctuationCapitalizer",
           "IntentSlotTagger", "text_inputs", "glue_file_inputs", "PREDICTORS", "load_predictor", "Predictor"]

PREDICTORS = {"glue": TextClassifier, "text_classification": TextClassifier, "ner": TokenTagger,
              "punctuation_capitalization": PunctuationCapitalizer, "intent_slot": IntentSlotTagger}


def load_predictor(path: str | os.PathLike, batch_size: int = 32, device: Optional[str] = None,
                   precision: str = "fp32", runtime: str = "torch"):
    """The predictor for whatever task the model folder at ``path`` holds (``precision``: fp32 or int8;
    ``runtime``: torch or onnxruntime)."""
    model = load_model_folder(path)
    if model.task == "squad":
        return QuestionAnswerer.from_model_folder(model, batch_size=batch_size, device=device, precision=precision,
                                                  runtime=runtime)
    if model.task not in PREDICTORS:
        raise ConfigError(f"{model.path} holds a {model.task!r} model; nmod's predictors read "
                          f"{sorted(['squad', *PREDICTORS])}")
    return PREDICTORS[model.task](model, batch_size, device, precision, runtime)
