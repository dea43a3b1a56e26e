"""`BertQuestionAnsweringDataLayer`: SQuAD features as typed ports for the question-answering graph."""
from __future__ import annotations

from typing import Optional

from nmod.backends.pytorch import DataLayerNM
from nmod.types import ChannelType, LabelsType, NeuralType

from ...ports import NEMO_PORT_ALIASES, bert_input_ports
from ...tokenizers import data_layer_tokenizer
from ..batching import BucketedBatches, PadCollate
from .dataset import SquadDataset
from .evaluation import SquadEvaluator

__all__ = ["BertQuestionAnsweringDataLayer"]


class BertQuestionAnsweringDataLayer(BucketedBatches, DataLayerNM):
    """SQuAD v1.1/v2.0 for extractive question answering.

    The tokenizer is named by primitives (`vocab_file`, `do_lower_case`, `tokenizer_name`,
    `pretrained_model_name`) so the layer exports to YAML; a ready `tokenizer` object may be passed
    instead (NeMo's recipes do), and then its vocab file and casing are what gets exported.

    `dynamic_padding` pads each batch to its longest row (else every row to `max_seq_length`);
    `bucket_by_length` makes `batch_sampler()` group rows of similar length. `mode="train"` skips
    questions that cannot be labelled; "eval" keeps all of them (each is owed a prediction);
    "test" needs no answers.
    """

    PORT_ALIASES = NEMO_PORT_ALIASES  # NeMo's input_type_ids / input_mask

    @property
    def output_ports(self):
        return {
            **bert_input_ports(),
            "unique_ids": NeuralType(("B",), ChannelType()),
            "start_positions": NeuralType(("B",), LabelsType()),
            "end_positions": NeuralType(("B",), LabelsType()),
        }

    def __init__(
        self,
        data_file: str,
        vocab_file: Optional[str] = None,
        do_lower_case: Optional[bool] = None,
        tokenizer_name: str = "nemobert",
        pretrained_model_name: Optional[str] = None,
        version_2_with_negative: bool = False,
        doc_stride: int = 128,
        max_query_length: int = 64,
        max_seq_length: int = 384,
        mode: str = "train",
        batch_size: int = 64,
        use_cache: bool = True,
        shuffle: Optional[bool] = None,
        dynamic_padding: bool = True,
        bucket_by_length: bool = False,
        pad_to_multiple_of: int = 1,
        drop_last: bool = False,
        tokenizer=None,
        name: Optional[str] = None,
    ):
        super().__init__(name=name)
        tokenizer = data_layer_tokenizer(self, tokenizer, tokenizer_name, pretrained_model_name, vocab_file,
                                         do_lower_case)
        self.tokenizer = tokenizer
        self.mode = mode
        self.batch_size = batch_size
        self.shuffle = (mode == "train") if shuffle is None else shuffle
        self.bucket_by_length = bucket_by_length
        self.drop_last = drop_last
        self.version_2_with_negative = version_2_with_negative
        self.dataset = SquadDataset(
            data_file, tokenizer, version_2_with_negative=version_2_with_negative, mode=mode,
            max_seq_length=max_seq_length, doc_stride=doc_stride, max_query_length=max_query_length,
            use_cache=use_cache, pad_to_length=None if dynamic_padding else max_seq_length)
        pad = tokenizer.pad_id
        self.collate_fn = PadCollate((pad, 0, 0, 0, 0, 0), pad_to_multiple_of=pad_to_multiple_of)

    def evaluator(self, n_best_size: int = 20, max_answer_length: int = 30,
                  null_score_diff_threshold: float = 0.0) -> SquadEvaluator:
        """Collects eval logits and turns them into predictions, files and official metrics."""
        return SquadEvaluator(self.dataset, n_best_size, max_answer_length, null_score_diff_threshold)
