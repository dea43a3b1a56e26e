"""Token classification (NER) in NeMo 0.11's format: `text_{split}.txt` and `labels_{split}.txt`.

`encode_words` (words and their labels -> sub-token windows with `subtokens_mask` and `loss_mask`)
and `TokenClassificationDataset` are shared by every one-label-per-word task.
"""
from .data_layer import (
                         BertTokenClassificationDataLayer,
                         BertTokenClassificationInferDataLayer,
                         TokenDataLayer,
                         pad_label_id,
)
from .dataset import TokenClassificationDataset, token_collate
from .features import TokenFeatures, encode_words, word_lengths
from .reader import (
                         LABEL_IDS_FILE,
                         TokenClassificationData,
                         TokenClassificationFormatError,
                         build_label_ids,
                         read_label_ids,
                         read_token_classification_files,
                         write_label_ids,
)

__all__ = ["BertTokenClassificationDataLayer", "BertTokenClassificationInferDataLayer", "TokenClassificationDataset",
           "token_collate", "TokenFeatures", "encode_words", "word_lengths", "TokenDataLayer", "pad_label_id",
           "read_token_classification_files", "TokenClassificationData", "TokenClassificationFormatError",
           "build_label_ids", "read_label_ids", "write_label_ids", "LABEL_IDS_FILE"]
