"""GLUE data layers: `GlueClassificationDataLayer` (eight tasks) and `GlueRegressionDataLayer` (STS-B).

Both share `SentenceDataLayer` with the text-classification layer: the tokenizer named by primitives
(or a ready object whose vocab file and casing are what gets exported to YAML), cached features,
pad-to-longest batches and optional length buckets.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from nmod.backends.pytorch import DataLayerNM
from nmod.types import ElementType, LabelsType, NeuralType, RegressionValuesType

from ...ports import NEMO_PORT_ALIASES, bert_input_ports
from ...tokenizers import data_layer_tokenizer
from ..batching import BucketedBatches, PadCollate
from .dataset import NO_LABEL_ID, SentenceDataset
from .features import SentenceFeatures, encode_sentences, load_or_build_features
from .reader import GlueData, glue_file_path, read_glue_file
from .tasks import GlueTask, get_task

__all__ = ["SentenceDataLayer", "GlueClassificationDataLayer", "GlueRegressionDataLayer"]

_READER_VERSION = 1  # bump when reading rules change what a file yields, so old caches are not reused


class SentenceDataLayer(BucketedBatches, DataLayerNM):
    """Base of the sentence(-pair) layers: ports, tokenizer, dataset, collation, batch sampler.

    Subclasses read their file and call `_build(...)`; `label_type` is the element type of `labels`.
    """

    label_type: type[ElementType] = LabelsType
    PORT_ALIASES = NEMO_PORT_ALIASES  # NeMo's input_type_ids / input_mask

    @property
    def output_ports(self):
        return {
            **bert_input_ports(),
            "labels": NeuralType(("B",), self.label_type()),
        }

    def _set_tokenizer(self, tokenizer, tokenizer_name: str, pretrained_model_name: Optional[str],
                       vocab_file: Optional[str], do_lower_case: Optional[bool]) -> None:
        self.tokenizer = data_layer_tokenizer(self, tokenizer, tokenizer_name, pretrained_model_name, vocab_file,
                                              do_lower_case)

    def _build(self, data_file: Path, texts_a: list, texts_b: Optional[list], labels: np.ndarray,
               cache_key: dict, max_seq_length: int, batch_size: int, shuffle: bool, use_cache: bool,
               dynamic_padding: bool, bucket_by_length: bool, pad_to_multiple_of: int, drop_last: bool) -> None:
        key = {**cache_key, "reader": _READER_VERSION, "tokenizer": self.tokenizer.fingerprint,
               "do_lower_case": bool(getattr(self.tokenizer, "do_lower_case", True)),
               "max_seq_length": int(max_seq_length)}
        self.features: SentenceFeatures
        self.features, self.cache_path = load_or_build_features(
            data_file, key, lambda: encode_sentences(self.tokenizer, texts_a, texts_b, labels, max_seq_length),
            use_cache)
        self.dataset = SentenceDataset(self.features, self.tokenizer.pad_id,
                                       None if dynamic_padding else max_seq_length)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.bucket_by_length, self.drop_last = bucket_by_length, drop_last
        self.collate_fn = PadCollate((self.tokenizer.pad_id, 0, 0, 0), pad_to_multiple_of=pad_to_multiple_of)


class GlueClassificationDataLayer(SentenceDataLayer):
    """One split of a GLUE classification task (all but STS-B), read from the GLUE folder layout.

    `split` is train, dev (MNLI: dev_matched / dev_mismatched, each its own layer so they are
    reported apart) or test (MNLI: test_matched / test_mismatched); the file is
    `{data_dir}/{split}.tsv`, unless `data_file` names another file to read in that split's format
    (then `data_dir` may be None). Test files have no labels: `has_labels` is False and `labels`
    holds -100 (CrossEntropyLoss's ignore_index). `shuffle=None` shuffles train only.

    `label_list` is the task's GLUE labels, in the order the class ids follow; `examples` (with
    each row's text, label, line and id column) is what prediction files are written from.
    """

    label_type = LabelsType

    def __init__(
        self,
        data_dir: Optional[str],
        task_name: str,
        split: str = "train",
        data_file: Optional[str] = None,
        tokenizer=None,
        vocab_file: Optional[str] = None,
        do_lower_case: Optional[bool] = None,
        tokenizer_name: str = "nemobert",
        pretrained_model_name: Optional[str] = None,
        max_seq_length: int = 128,
        batch_size: int = 8,
        shuffle: Optional[bool] = None,
        use_cache: bool = True,
        dynamic_padding: bool = True,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        drop_last: bool = False,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        self.task: GlueTask = get_task(task_name)
        self._check_task()
        self.task_name, self.split = self.task.name, self.task.check_split(split)
        if data_file is None:
            if data_dir is None:
                raise ValueError(f"{type(self).__name__}: pass data_dir (the {self.task.folder} folder) or data_file")
            data_file = glue_file_path(data_dir, self.task, split)
        self.data_file = str(data_file)
        self._set_tokenizer(tokenizer, tokenizer_name, pretrained_model_name, vocab_file, do_lower_case)
        self.data: GlueData = read_glue_file(self.data_file, self.task, self.split)
        examples = self.data.examples
        self._build(Path(self.data_file), [ex.text_a for ex in examples],
                    [ex.text_b for ex in examples] if self.task.is_pair else None, self._label_array(),
                    {"tag": f"{self.task.name}-{self.split}", "data_sha256": self.data.sha256,
                     "task": self.task.name, "has_labels": self.has_labels},
                    max_seq_length, batch_size, self.split == "train" if shuffle is None else shuffle, use_cache,
                    dynamic_padding, bucket_by_length, pad_to_multiple_of, drop_last)

    def _check_task(self) -> None:
        if self.task.is_regression:
            raise ValueError(f"GLUE task {self.task.name} is regression (a similarity score): use "
                             f"GlueRegressionDataLayer")

    def _label_array(self) -> np.ndarray:
        if not self.has_labels:
            return np.full(len(self.examples), NO_LABEL_ID, dtype=np.int64)
        ids = {label: i for i, label in enumerate(self.task.labels)}
        return np.array([ids[ex.label] for ex in self.examples], dtype=np.int64)

    @property
    def has_labels(self) -> bool:
        return self.data.has_labels

    @property
    def examples(self) -> list:
        return self.data.examples

    @property
    def summary(self):
        """What reading the file found: rows kept and skipped, and a warning per problem."""
        return self.data.summary

    @property
    def label_list(self) -> list[str]:
        return list(self.task.labels or ())

    @property
    def num_labels(self) -> int:
        return self.task.num_labels

    @property
    def is_regression(self) -> bool:
        return self.task.is_regression

    @property
    def labels(self) -> np.ndarray:
        """One label per row: class ids (int64) or scores (float32); -100 / NaN in a test file."""
        return self.features.labels


class GlueRegressionDataLayer(GlueClassificationDataLayer):
    """STS-B: sentence pairs and a similarity score in [0, 5] as a float `labels` (RegressionValuesType),
    which wires into `SequenceRegression.preds`' partner `MSELoss.labels`. Test rows hold NaN.
    `label_list` is empty and `num_labels` 1 (one output)."""

    label_type = RegressionValuesType

    def _check_task(self) -> None:
        if not self.task.is_regression:
            raise ValueError(f"GLUE task {self.task.name} is classification: use GlueClassificationDataLayer "
                             f"(GlueRegressionDataLayer reads STS-B)")

    def _label_array(self) -> np.ndarray:
        if not self.has_labels:
            return np.full(len(self.examples), np.nan, dtype=np.float32)
        return np.array([ex.label for ex in self.examples], dtype=np.float32)
