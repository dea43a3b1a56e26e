"""Data layers and the batching they share."""
from .batching import BucketBatchSampler, PadCollate
from .squad import BertQuestionAnsweringDataLayer, SquadDataset, SquadEvaluator, SquadFormatError

__all__ = ["BucketBatchSampler", "PadCollate", "BertQuestionAnsweringDataLayer", "SquadDataset", "SquadEvaluator",
           "SquadFormatError"]
