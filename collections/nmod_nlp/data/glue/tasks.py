"""The nine GLUE tasks as the GLUE download script lays them out: files, columns, labels.

Column indices are those NeMo's (and Hugging Face's) processors read, counted from 0 after splitting
a line on tabs. Labelled files (train, dev) and test files differ: a test file has an index column
first and no label, so its text columns sit elsewhere. Task names come from `nmod_nlp.metrics.glue`,
which also says how each task is scored.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from nmod_nlp.metrics.glue import GLUE_MAIN_METRIC, GLUE_TASKS, normalize_task_name

__all__ = ["GlueTask", "GLUE_TASK_SPECS", "get_task", "GLUE_TASKS", "normalize_task_name"]


@dataclass(frozen=True)
class GlueTask:
    """Where a task's texts and label are. `label_col=-1` means the last field (MNLI's dev files have
    more label columns than its train file, so "last" is the one rule that reads both)."""

    name: str
    folder: str  # the download script's folder name
    labels: Optional[tuple[str, ...]]  # None: regression (STS-B), the label is a float score
    text_a: int
    text_b: Optional[int]
    label_col: int
    has_header: bool  # labelled files; every test file has a header
    test_text_a: int
    test_text_b: Optional[int]
    dev_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    index_col: Optional[int] = None  # a labelled file's own id column, if it has one

    @property
    def is_regression(self) -> bool:
        return self.labels is None

    @property
    def num_labels(self) -> int:
        """Classifier outputs: the number of classes, or 1 for a regression score."""
        return 1 if self.labels is None else len(self.labels)

    @property
    def is_pair(self) -> bool:
        return self.text_b is not None

    @property
    def splits(self) -> tuple[str, ...]:
        return ("train", *self.dev_splits, *self.test_splits)

    @property
    def main_metric(self) -> str:
        return GLUE_MAIN_METRIC[self.name]

    def has_labels(self, split: str) -> bool:
        return split not in self.test_splits

    def check_split(self, split: str) -> str:
        """`split` if the task has it, else an error that names the task's splits."""
        if split in self.splits:
            return split
        hint = ""
        if split == "dev" and self.dev_splits != ("dev",):
            hint = f"; {self.folder} is evaluated on {' and '.join(self.dev_splits)} separately"
        elif split == "test" and self.test_splits != ("test",):
            hint = f"; {self.folder} has {' and '.join(self.test_splits)}"
        raise ValueError(f"GLUE task {self.name} has no split {split!r}; its splits are {list(self.splits)}{hint}")

    def submission_file_name(self, split: str) -> str:
        """The file name the GLUE server expects for this test split's predictions."""
        self.check_split(split)
        if split == "test_matched":
            return "MNLI-m.tsv"
        if split == "test_mismatched":
            return "MNLI-mm.tsv"
        return f"{self.folder}.tsv"


_TWO = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
GLUE_TASK_SPECS: dict[str, GlueTask] = {t.name: t for t in [
    # CoLA: source, label, original judgement, sentence; no header. Test: index, sentence.
    GlueTask("cola", "CoLA", _TWO, 3, None, 1, False, 1, None),
    # SST-2: sentence, label. Test: index, sentence.
    GlueTask("sst-2", "SST-2", _TWO, 0, None, 1, True, 1, None),
    # MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (the file starts with a BOM). Test: index first.
    GlueTask("mrpc", "MRPC", _TWO, 3, 4, 0, True, 3, 4),
    # STS-B: index, genre, filename, year, old_index, source1, source2, sentence1, sentence2, score.
    GlueTask("sts-b", "STS-B", None, 7, 8, -1, True, 7, 8, index_col=0),
    # QQP: id, qid1, qid2, question1, question2, is_duplicate. Test: id, question1, question2.
    GlueTask("qqp", "QQP", _TWO, 3, 4, 5, True, 1, 2, index_col=0),
    # MNLI: index, promptID, pairID, genre, 4 parses, sentence1, sentence2, label1[..label5], gold_label.
    GlueTask("mnli", "MNLI", ("contradiction", "entailment", "neutral"), 8, 9, -1, True, 8, 9,
             dev_splits=("dev_matched", "dev_mismatched"), test_splits=("test_matched", "test_mismatched"),
             index_col=0),
    # QNLI: index, question, sentence, label. RTE, WNLI: index, sentence1, sentence2, label.
    GlueTask("qnli", "QNLI", _NLI2, 1, 2, -1, True, 1, 2, index_col=0),
    GlueTask("rte", "RTE", _NLI2, 1, 2, -1, True, 1, 2, index_col=0),
    GlueTask("wnli", "WNLI", _TWO, 1, 2, -1, True, 1, 2, index_col=0),
]}
assert tuple(GLUE_TASK_SPECS) == GLUE_TASKS


def get_task(name: str) -> GlueTask:
    """The task named `name` in any spelling `normalize_task_name` accepts."""
    return GLUE_TASK_SPECS[normalize_task_name(name)]
