"""Writing nmod encoders (and the heads Hugging Face can express) as ``transformers`` folders.

A folder is ``config.json`` + ``model.safetensors`` + the tokenizer files (``vocab.txt``,
``tokenizer_config.json``, ``special_tokens_map.json``), which ``transformers`` loads with
``from_pretrained`` and ``pipeline``. Nothing here imports ``transformers``: the config and the
parameter names are written from tables, the inverse of the readers in ``modules/encoders``.

* ``BERT`` keeps Hugging Face's parameter names, so its state dict is written as it is.
* ``MegatronBERT`` is renamed onto ``transformers``' ``megatron-bert`` names (``HF_MEGATRON_NAMES``),
  its fused QKV split into query/key/value, and its padded vocabulary rows cut to the real vocabulary.
* a one-Linear task head becomes ``qa_outputs`` or ``classifier`` (``to_hf``).
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from nmod.core.config import plain_permissions
from nmod.core.errors import ConfigError, MissingFileError

from ..modules.encoders.bert import BertConfig, BertModel
from ..modules.encoders.megatron import MegatronBertConfig, MegatronBertModel

__all__ = [
    "HF_CLASSES",
    "HF_MEGATRON_NAMES",
    "POOLER_SCALE",
    "head_kind",
    "megatron_to_hf",
    "to_hf",
    "bert_hf_config",
    "bert_hf_state_dict",
    "megatron_hf_config",
    "megatron_hf_state_dict",
    "write_hf_folder",
    "write_tokenizer_files",
]

# nmod's MegatronBertModel name -> transformers' MegatronBertModel name, applied in order.
HF_MEGATRON_NAMES = [
    (r"^embedding\.tokentype_embeddings\.", "embeddings.token_type_embeddings."),
    (r"^embedding\.", "embeddings."),
    (r"^encoder\.layers\.(\d+)\.input_layernorm\.", r"encoder.layer.\1.attention.ln."),
    (r"^encoder\.layers\.(\d+)\.self_attention\.dense\.", r"encoder.layer.\1.attention.output.dense."),
    (r"^encoder\.layers\.(\d+)\.post_attention_layernorm\.", r"encoder.layer.\1.ln."),
    (r"^encoder\.layers\.(\d+)\.mlp\.dense_h_to_4h\.", r"encoder.layer.\1.intermediate.dense."),
    (r"^encoder\.layers\.(\d+)\.mlp\.dense_4h_to_h\.", r"encoder.layer.\1.output.dense."),
    (r"^encoder\.final_layernorm\.", "encoder.ln."),
]
_QKV = re.compile(r"^encoder\.layers\.(\d+)\.self_attention\.query_key_value\.(weight|bias)$")

# nmod's activation names -> transformers' ACT2FN names (the same functions).
_HF_ACTIVATIONS = {"gelu": "gelu", "gelu_new": "gelu_pytorch_tanh", "gelu_pytorch_tanh": "gelu_pytorch_tanh",
                   "relu": "relu"}


def megatron_hf_config(cfg: MegatronBertConfig) -> dict:
    """``config.json`` of a ``transformers`` megatron-bert with ``cfg``'s sizes and real vocabulary."""
    return {
        "model_type": "megatron-bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "intermediate_size": cfg.ffn_hidden_size,
        "hidden_act": _HF_ACTIVATIONS[cfg.activation],
        "hidden_dropout_prob": cfg.hidden_dropout,
        "attention_probs_dropout_prob": cfg.attention_dropout,
        "max_position_embeddings": cfg.max_position_embeddings,
        # Megatron pretrains without token types (num_tokentypes=0); HF always has them: zeros then.
        "type_vocab_size": cfg.num_tokentypes or 2,
        "layer_norm_eps": cfg.layernorm_epsilon,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
    }


def megatron_hf_state_dict(model: MegatronBertModel) -> dict[str, torch.Tensor]:
    """``model``'s weights under ``transformers.MegatronBertModel``'s names (no ``bert.`` prefix)."""
    cfg = model.config
    heads, head_dim = cfg.num_attention_heads, cfg.hidden_size // cfg.num_attention_heads
    out = {}
    for key, value in model.state_dict().items():
        value = value.detach().to("cpu", torch.float32)
        qkv = _QKV.match(key)
        if qkv:  # rows [heads, (q, k, v), head_dim] -> three (hidden, ...) tensors
            layer, kind = qkv.groups()
            parts = value.reshape(heads, 3, head_dim, *value.shape[1:]).unbind(1)
            for name, part in zip(("query", "key", "value"), parts):
                hf_key = f"encoder.layer.{layer}.attention.self.{name}.{kind}"
                out[hf_key] = part.reshape(cfg.hidden_size, *value.shape[1:])
            continue
        for pattern, replacement in HF_MEGATRON_NAMES:
            key = re.sub(pattern, replacement, key)
        out[key] = value
    words = "embeddings.word_embeddings.weight"
    out[words] = out[words][: cfg.vocab_size]  # rows past the real vocabulary are Megatron's padding
    types = "embeddings.token_type_embeddings.weight"
    if types not in out:
        out[types] = torch.zeros(2, cfg.hidden_size)
    return {k: v.contiguous() for k, v in out.items()}


def bert_hf_config(cfg: BertConfig) -> dict:
    """``config.json`` of a ``transformers`` BERT with ``cfg``'s sizes."""
    values = {name: getattr(cfg, name) for name in BertConfig.__dataclass_fields__}
    values["hidden_act"] = _HF_ACTIVATIONS.get(values["hidden_act"], values["hidden_act"])
    return {"model_type": "bert", **values, "initializer_range": 0.02, "pad_token_id": 0,
            "position_embedding_type": "absolute"}


def bert_hf_state_dict(model: BertModel) -> dict[str, torch.Tensor]:
    """``BertModel`` already uses ``transformers``' names."""
    return {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}


def write_tokenizer_files(out: Path, vocab_file: str | Path, do_lower_case: bool, max_length: int) -> None:
    """A WordPiece tokenizer as ``AutoTokenizer`` reads it: ``vocab.txt`` and its settings."""
    vocab_file = Path(vocab_file)
    if not vocab_file.is_file():
        raise MissingFileError(f"vocab file {vocab_file} does not exist")
    shutil.copyfile(vocab_file, out / "vocab.txt")
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"}
    _write_json(out / "special_tokens_map.json", specials)
    _write_json(out / "tokenizer_config.json", {"tokenizer_class": "BertTokenizer", "do_lower_case": do_lower_case,
                                                "model_max_length": max_length, **specials})


def write_hf_folder(out: str | Path, config: dict, state: dict[str, torch.Tensor], architecture: str,
                    vocab_file: str | Path, do_lower_case: bool) -> Path:
    """``config.json`` (with ``architectures``), ``model.safetensors`` and the tokenizer files."""
    from safetensors.torch import save_file

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a folder to write the transformers model into")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "config.json", {"architectures": [architecture], **config})
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    plain_permissions(out / "model.safetensors")  # safetensors writes owner-only files
    write_tokenizer_files(out, vocab_file, do_lower_case, config["max_position_embeddings"])
    return out


def _write_json(path: Path, value: dict) -> None:
    path.write_text(json.dumps(value, indent=2, sort_keys=False) + "\n")


def megatron_to_hf(out: str | Path, vocab_file: str | Path | None, checkpoint: str | Path,
                   config_file: str | Path | None = None, do_lower_case: bool | None = None,
                   checkpoint_version: float | None = None, allow_unsafe_checkpoint: bool = False) -> Path:
    """A pretrained Megatron-LM BERT (any format ``MegatronBERT`` reads: ``megatron_formats.FORMATS``,
    tensor-parallel shards and pipeline stages merged) as a ``transformers`` megatron-bert folder for
    ``MegatronBertModel.from_pretrained``.

    The encoder and, when the checkpoint has one, its pretrained pooler (``pooler.dense``), which
    ``MegatronBertForSequenceClassification`` fine-tunes from; the pretraining heads are not carried
    over. Without a pooler in the checkpoint, ``MegatronBertModel`` initialises one afresh (and says so).
    ``vocab_file`` may be None for a checkpoint that carries its vocabulary (a ``.nemo``, NeMo 2).
    """
    from ..modules.encoders.megatron import MegatronBERT
    from ..tokenizers.tokenizer_utils import _infer_lower_case

    encoder = MegatronBERT(config_file=None if config_file is None else str(config_file), checkpoint=str(checkpoint),
                           vocab_file=None if vocab_file is None else str(vocab_file),
                           checkpoint_version=checkpoint_version, allow_unsafe_checkpoint=allow_unsafe_checkpoint,
                           add_pooler="if_pretrained")
    if encoder.vocab_file is None:
        raise ConfigError(f"{checkpoint} carries no vocabulary: pass --vocab_file (the vocab.txt it was trained with)")
    if do_lower_case is None:
        do_lower_case = encoder.recorded_lower_case
    if do_lower_case is None:
        do_lower_case = _infer_lower_case(None, Path(encoder.vocab_file))
    model = encoder.language_model
    return write_hf_folder(out, megatron_hf_config(model.config), megatron_hf_state_dict(model), "MegatronBertModel",
                           encoder.vocab_file, do_lower_case)


# ----------------------------------------------------------------------------------------------
# A model folder (``nmod_nlp.model_folder``) with its task head

#: How close the near-identity pooler comes to passing [CLS] through: tanh(s x) / s = x (1 - (s x)^2 / 3 + ...),
#: so hidden values up to 100 change by at most 3e-6 relative, below float32 rounding of the logits.
POOLER_SCALE = 1e-5


def head_kind(head, task: str) -> str:
    """Which ``transformers`` head an nmod head maps onto: question_answering, token_classification or
    sequence_classification; anything else is a ``ConfigError`` that says why."""
    from ..modules.heads.classifiers import SequenceClassifier, SequenceRegression, TokenClassifier

    if not isinstance(head, (TokenClassifier, SequenceRegression)):
        raise ConfigError(f"head '{head.name}' is a {type(head).__name__}; transformers' Bert*For* classes express "
                          f"only TokenClassifier, SequenceClassifier and SequenceRegression heads")
    layers = (head.mlp.layers + 1) // 2
    if layers != 1:
        raise ConfigError(f"head '{head.name}' ({type(head).__name__}) has num_layers={layers}; transformers' "
                          f"classifier and qa_outputs are one Linear layer, so only num_layers=1 heads convert")
    if isinstance(head, (SequenceClassifier, SequenceRegression)):
        return "sequence_classification"
    if task == "squad":
        if head.mlp.layer0.out_features != 2:
            raise ConfigError(f"SQuAD head '{head.name}' has {head.mlp.layer0.out_features} classes; "
                              f"BertForQuestionAnswering's qa_outputs has 2 (start, end)")
        if head.mlp.log_softmax:
            raise ConfigError(f"SQuAD head '{head.name}' has log_softmax=True; question answering reads raw "
                              f"start/end logits, as BertForQuestionAnswering gives them")
        return "question_answering"
    return "token_classification"


HF_CLASSES = {  # (encoder family, head kind) -> architecture
    ("bert", "question_answering"): "BertForQuestionAnswering",
    ("bert", "token_classification"): "BertForTokenClassification",
    ("bert", "sequence_classification"): "BertForSequenceClassification",
    ("megatron", "question_answering"): "MegatronBertForQuestionAnswering",
    ("megatron", "token_classification"): "MegatronBertForTokenClassification",
    ("megatron", "sequence_classification"): "MegatronBertForSequenceClassification",
}


def to_hf(model_dir: str | Path, out: str | Path, near_identity_pooler: bool = False) -> tuple[Path, str]:
    """A model folder (an encoder and one task head) as a ``transformers`` folder; returns it and the class.

    BERT encoders become ``Bert*For*``, Megatron ones ``MegatronBert*For*``; the head's one Linear
    becomes ``qa_outputs`` (SQuAD) or ``classifier``. A ``log_softmax=True`` head converts too: the
    transformers model gives the scores before the log-softmax, so its softmax and argmax are nmod's.

    ``*ForSequenceClassification`` puts a pooler (``tanh(dense(h_[CLS]))``) before its classifier. A
    sequence head on the encoder's pooler (``pooled=True``, the recipes' ``--head pooler``) is exactly
    that: the encoder's pooler becomes ``bert.pooler``. A head that reads ``h_[CLS]`` directly (NeMo's,
    ``--head mlp --num_output_layers 1``) has no pooler, and no pooler weights compute the identity, so
    it converts only with ``near_identity_pooler``: the pooler scales by ``POOLER_SCALE`` (tanh is
    linear there) and the classifier by its inverse, equal to nmod to float32 rounding. It is meant for
    inference; fine-tuning it further in transformers starts from that unusual pooler.
    """
    from ..model_folder import load_model_folder
    from ..modules.encoders.bert import BERT
    from ..modules.encoders.megatron import MegatronBERT

    folder = load_model_folder(model_dir)
    encoders = {n: m for n, m in folder.modules.items() if isinstance(m, (BERT, MegatronBERT))}
    heads = {n: m for n, m in folder.modules.items() if n not in encoders}
    if len(encoders) != 1 or len(heads) != 1:
        raise ConfigError(f"{folder.path}: transformers' *For* classes hold one encoder and one head; this folder has "
                          f"encoders {sorted(encoders)} and heads {sorted(heads)}")
    (encoder,), (head,) = encoders.values(), heads.values()
    family = "megatron" if isinstance(encoder, MegatronBERT) else "bert"
    kind = head_kind(head, folder.task)
    if head.hidden_size != encoder.hidden_size:
        raise ConfigError(f"head '{head.name}' reads hidden size {head.hidden_size}, "
                          f"encoder gives {encoder.hidden_size}")
    pooled = bool(getattr(head, "pooled", False))
    if pooled and not encoder.has_pooler:
        raise ConfigError(f"head '{head.name}' reads the encoder's pooled_output, but the encoder has no pooler")
    if kind == "sequence_classification" and not pooled and not near_identity_pooler:
        raise ConfigError(f"head '{head.name}' ({type(head).__name__}) reads the [CLS] hidden state directly, but "
                          f"{HF_CLASSES[family, kind]} passes it through a pooler (tanh of a Linear) first, which no "
                          f"weights make the identity; pass --near_identity_pooler to write a pooler that is the "
                          f"identity to float32 rounding (for inference; see docs/inference_export.md)")
    if family == "megatron":
        config, encoder_state = megatron_hf_config(encoder.config), megatron_hf_state_dict(encoder.language_model)
    else:
        config, encoder_state = bert_hf_config(encoder.config), bert_hf_state_dict(encoder.bert)
    if not pooled:  # a pooler no head reads: *ForQuestionAnswering/*ForTokenClassification have none
        encoder_state = {k: v for k, v in encoder_state.items() if not k.startswith("pooler.")}
    state = {f"bert.{k}": v for k, v in encoder_state.items()}
    linear = head.mlp.layer0
    weight, bias = linear.weight.detach().float().cpu(), linear.bias.detach().float().cpu()
    num_labels = weight.shape[0]
    if kind == "question_answering":
        state.update({"qa_outputs.weight": weight, "qa_outputs.bias": bias})
    else:
        if kind == "sequence_classification" and not pooled:
            hidden = encoder.hidden_size
            state["bert.pooler.dense.weight"] = torch.eye(hidden) * POOLER_SCALE
            state["bert.pooler.dense.bias"] = torch.zeros(hidden)
            weight = weight / POOLER_SCALE
        if kind == "sequence_classification":
            config["problem_type"] = "regression" if num_labels == 1 else "single_label_classification"
        state.update({"classifier.weight": weight, "classifier.bias": bias})
        labels = [names for names in folder.labels.values() if isinstance(names, list) and len(names) == num_labels]
        if len(labels) == 1:
            config["id2label"] = {str(i): str(name) for i, name in enumerate(labels[0])}
            config["label2id"] = {str(name): i for i, name in enumerate(labels[0])}
    config["num_labels"] = num_labels
    architecture = HF_CLASSES[family, kind]
    tokenizer = folder.tokenizer
    path = write_hf_folder(out, config, {k: v.contiguous() for k, v in state.items()}, architecture,
                           tokenizer.vocab_file, bool(tokenizer.do_lower_case))
    return path, architecture
