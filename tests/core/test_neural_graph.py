"""NeMo 0.11's NeuralGraph: recording, bound inputs and outputs, nesting and its mode rules, introspection,
persistence (serialize, YAML, weights), training and inference on a graph, weight ties; each against what
the wiring by hand gives."""
import copy

import pytest
import torch

import nmod
from nmod import NeuralGraph, OperationMode
from nmod.callbacks import CheckpointCallback
from nmod.core.errors import (ConfigClassMismatchError, GraphError, NeuralPortNameMismatchError,
                              NeuralPortNmTensorMismatchError)
from nmod.testing import ToyClassifier, ToyDataLayer, ToyEmbedding, ToyEncoder, ToyLoss, run_graph
from nmod.types import ChannelType, MaskType, NeuralType, NeuralTypeComparisonResult


@pytest.fixture
def parts():
    return {"dl": ToyDataLayer(name="dl", num_examples=16), "emb": ToyEmbedding(name="emb"),
            "enc": ToyEncoder(name="enc"), "cls": ToyClassifier(name="cls"), "loss": ToyLoss(name="loss")}


def model_graph(m, name="model", mode=OperationMode.both):
    with NeuralGraph(operation_mode=mode, name=name) as g:
        hidden = m["emb"](input_ids=g.inputs["input_ids"])
        hidden = m["enc"](hidden_states=hidden, attention_mask=g.inputs["attention_mask"])
        logits = m["cls"](hidden_states=hidden)
        g.outputs.bind([logits])
    return g


def training_graph(m, model):
    with NeuralGraph(operation_mode=OperationMode.training, name="training") as g:
        batch = m["dl"]()
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
        loss = m["loss"](logits=logits, labels=batch.labels)
        g.outputs.bind([loss, logits])
    return g


def test_recording_binds_inputs_to_the_consuming_ports_types(parts):
    g = model_graph(parts)
    assert g.steps == {0: "emb", 1: "enc", 2: "cls"} and len(g) == 3
    assert list(g.modules) == ["emb", "enc", "cls"] and g["enc"] is parts["enc"]
    assert g.input_ports["input_ids"] == NeuralType(("B", "T"), ChannelType())
    assert g.input_ports["attention_mask"].elements_type == MaskType()
    assert list(g.output_ports) == ["logits"] and list(g.tensors[1]) == ["hidden_states"]
    assert [t.name for t in g.tensor_list] == ["emb.hidden_states", "enc.hidden_states", "cls.logits"]
    assert all(m.operation_mode is OperationMode.both for m in g.modules.values())
    logits = g.output_tensors["logits"]
    assert logits.producer_step_module_port == (2, "cls", "logits") and logits.producer_name == "cls"
    assert g.tensors[0]["hidden_states"].consumers == [(1, "enc", "hidden_states")]
    assert logits.compare(g.tensors[0]["hidden_states"]) is NeuralTypeComparisonResult.INCOMPATIBLE
    text = g.summary()
    assert "attention_mask<-input.attention_mask" in text and "bound outputs: logits (B, C) LogitsType" in text


def test_a_deep_copied_module_is_recorded_in_graphs_like_its_original(parts):
    """copy.deepcopy keeps a module in its context: its calls are steps of the graph being recorded."""
    copies = {**parts, "cls": copy.deepcopy(parts["cls"])}
    assert copies["cls"]._context is parts["cls"]._context
    g = model_graph(copies)
    assert g["cls"] is copies["cls"] and g["cls"] is not parts["cls"]
    assert list(g.output_ports) == ["logits"]


def test_default_outputs_are_every_steps_named_by_port_or_module(parts):
    with NeuralGraph(name="g") as g:
        h = parts["emb"](input_ids=g.inputs["ids"])
        h = parts["enc"](hidden_states=h)
        parts["cls"](hidden_states=h)
    assert list(g.outputs) == ["emb.hidden_states", "enc.hidden_states", "logits"]  # two hidden_states clash


def test_nesting_copies_the_steps_and_shares_the_modules(parts):
    model = model_graph(parts)
    train = training_graph(parts, model)
    assert train.steps == {0: "dl", 1: "emb", 2: "enc", 3: "cls", 4: "loss"}
    assert train["emb"] is model["emb"] is parts["emb"] and train["dl"] is parts["dl"]
    assert len(model) == 3  # the inner graph is unchanged
    loss, logits = train.output_tensors.values()
    assert logits.producer_step_module_port == (3, "cls", "logits")
    assert train.tensors[2]["hidden_states"].call.inputs["attention_mask"].producer is parts["dl"]
    # nested into an evaluation graph too, with the same modules
    with NeuralGraph(operation_mode=OperationMode.evaluation) as evaluation:
        batch = parts["dl"]()
        model(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    assert evaluation["cls"] is train["cls"]


def test_mode_rules_and_wiring_errors_name_the_graph_module_and_port(parts):
    training = model_graph(parts, name="trainer", mode=OperationMode.training)
    with NeuralGraph(operation_mode=OperationMode.evaluation, name="evaluator"):
        batch = parts["dl"]()
        with pytest.raises(TypeError, match="graph 'trainer' \\(training\\) cannot be nested into graph 'evaluator' "
                                            "\\(evaluation\\)"):
            training(input_ids=batch.input_ids, attention_mask=batch.attention_mask)
    model = model_graph(parts)
    with pytest.raises(NeuralPortNameMismatchError, match="graph 'model' has input ports \\['input_ids', "
                                                          "'attention_mask'\\]; unknown \\['mask'\\], missing"):
        model(input_ids=batch.input_ids, mask=batch.attention_mask)
    with pytest.raises(NeuralPortNmTensorMismatchError, match="ToyEmbedding.input_ids .*ToyDataLayer.labels"):
        model(input_ids=batch.labels, attention_mask=batch.attention_mask)
    stray = parts["emb"](input_ids=batch.input_ids)
    with pytest.raises(GraphError, match="graph 'model': cannot bind ToyEmbedding.hidden_states \\(module 'emb'\\)"):
        model.outputs.bind([stray])
    with pytest.raises(GraphError, match="output names \\['a', 'a'\\] must be distinct"):
        model.outputs.bind([model.tensors[0]["hidden_states"], model.tensors[2]["logits"]], names=["a", "a"])


def test_plain_wiring_keeps_working_beside_graphs(parts, toy_batch):
    m = parts
    batch = m["dl"]()
    logits = m["cls"](hidden_states=m["enc"](hidden_states=m["emb"](input_ids=batch.input_ids)))
    assert logits.call.graph is None and logits.producer_step_module_port == (None, "cls", "logits")
    loss = m["loss"](logits=logits, labels=batch.labels)
    assert isinstance(nmod.Graph([loss]), nmod.Graph)


def test_serialize_and_yaml_round_trip_to_an_equal_graph_with_the_same_outputs(parts, tmp_path):
    model = model_graph(parts)
    copy_of = NeuralGraph.deserialize(model.serialize(), name="copy")
    assert copy_of == model and list(copy_of.modules) == ["emb_1", "enc_1", "cls_1"]  # new modules, unique names
    for new, old in zip(copy_of.modules.values(), model.modules.values()):
        new.load_state_dict(old.state_dict())
    inputs = {"input_ids": torch.randint(0, 11, (3, 5)), "attention_mask": torch.ones(3, 5, dtype=torch.long)}
    with torch.no_grad():
        ours = run_graph(model.graph, {"model.inputs": inputs})[0]
        theirs = run_graph(copy_of.graph, {"copy.inputs": inputs})[0]
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)

    model.export_to_config(tmp_path / "model.yaml")
    reused = NeuralGraph.import_from_config(tmp_path / "model.yaml", reuse_existing_modules=True)
    assert reused == model and reused["cls"] is parts["cls"]
    other = tmp_path / "module.yaml"
    parts["cls"].export_to_config(str(other))
    with pytest.raises(ConfigClassMismatchError, match="describes a 'nmod.testing.ToyClassifier', not a NeuralGraph"):
        NeuralGraph.import_from_config(other)


def test_save_to_and_restore_from_round_trip_weights_freeze_and_unfreeze(parts, tmp_path):
    model = model_graph(parts)
    before = {n: copy.deepcopy(m.state_dict()) for n, m in model.modules.items()}
    model.save_to(tmp_path / "w.pt")
    for m in model.modules.values():
        with torch.no_grad():
            for p in m.parameters():
                p.add_(1.0)
    model.restore_from(tmp_path / "w.pt", module_names=["emb", "cls"])
    torch.testing.assert_close(parts["emb"].state_dict(), before["emb"])
    assert not torch.equal(parts["enc"].dense.weight, before["enc"]["dense.weight"])  # not named: left as it was
    model.restore_from(tmp_path / "w.pt")
    torch.testing.assert_close(parts["enc"].state_dict(), before["enc"])
    model.freeze(["enc"])
    assert not any(p.requires_grad for p in parts["enc"].parameters())
    assert all(p.requires_grad for p in parts["cls"].parameters())
    model.unfreeze()
    assert all(p.requires_grad for m in model.modules.values() for p in m.parameters())


def test_training_a_graph_equals_training_its_tensors(parts):
    def run(use_graph: bool):
        torch.manual_seed(0)
        m = {"dl": ToyDataLayer(num_examples=16), "emb": ToyEmbedding(), "enc": ToyEncoder(), "cls": ToyClassifier(),
             "loss": ToyLoss()}
        nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=0, progress_bar=False)
        if use_graph:
            graph = training_graph(m, model_graph(m))
            nf.train(training_graph=graph, optimizer="sgd", optimization_params={"max_steps": 6, "lr": 0.1})
            preds = nf.infer(graph)
        else:
            batch = m["dl"]()
            h = m["enc"](hidden_states=m["emb"](input_ids=batch.input_ids), attention_mask=batch.attention_mask)
            logits = m["cls"](hidden_states=h)
            loss = m["loss"](logits=logits, labels=batch.labels)
            nf.train([loss], optimizer="sgd", optimization_params={"max_steps": 6, "lr": 0.1})
            preds = nf.infer([loss, logits])
        return {k: v for name in ("emb", "enc", "cls") for k, v in m[name].state_dict().items()}, preds

    by_graph, graph_preds = run(True)
    by_hand, hand_preds = run(False)
    for key in by_hand:
        torch.testing.assert_close(by_graph[key], by_hand[key], rtol=0, atol=0)
    torch.testing.assert_close(torch.cat(graph_preds[1]), torch.cat(hand_preds[1]))


def test_tied_weights_are_one_parameter_through_training_checkpoints_and_serialize(tmp_path):
    torch.manual_seed(0)
    dl, loss = ToyDataLayer(num_examples=16, name="tie_dl"), ToyLoss(name="tie_loss")
    first, second = ToyEmbedding(name="first"), ToyEmbedding(name="second")
    enc, cls = ToyEncoder(name="tie_enc"), ToyClassifier(name="tie_cls")
    second.tie_weights_with(first, ["word_embeddings.weight"])
    assert second.word_embeddings.weight is first.word_embeddings.weight
    with NeuralGraph(operation_mode=OperationMode.training, name="tied") as g:
        batch = dl()
        h = enc(hidden_states=first(input_ids=batch.input_ids), attention_mask=batch.attention_mask)
        h2 = enc(hidden_states=second(input_ids=batch.input_ids))
        logits = cls(hidden_states=h)
        g.outputs.bind([loss(logits=logits, labels=batch.labels)])
        cls(hidden_states=h2)
    nf = nmod.NeuralModuleFactory(placement="cpu", random_seed=0, progress_bar=False)
    nf.train(training_graph=g, optimizer="sgd", optimization_params={"max_steps": 3, "lr": 0.5},
             callbacks=[CheckpointCallback(str(tmp_path / "ckpt"), step_freq=3)])
    assert second.word_embeddings.weight is first.word_embeddings.weight
    with torch.no_grad():
        first.word_embeddings.weight.zero_()
    nf.train(training_graph=g, optimizer="sgd", optimization_params={"max_steps": 3, "lr": 0.5},
             callbacks=[CheckpointCallback(str(tmp_path / "ckpt"), force_load=True)])  # resumes at step 3
    assert second.word_embeddings.weight is first.word_embeddings.weight
    assert first.word_embeddings.weight.abs().sum() > 0  # the checkpoint's values, in the shared parameter
    rebuilt = NeuralGraph.deserialize(g.serialize(), name="tied_copy")
    assert rebuilt["second_1"].word_embeddings.weight is rebuilt["first_1"].word_embeddings.weight
    assert rebuilt["second_1"].word_embeddings.weight is not first.word_embeddings.weight


def test_a_graph_with_bound_inputs_exports_to_torchscript(parts, tmp_path):
    model = model_graph(parts)
    example = {"input_ids": torch.randint(0, 11, (2, 5)), "attention_mask": torch.ones(2, 5, dtype=torch.long)}
    nf = nmod.NeuralModuleFactory(placement="cpu", progress_bar=False)
    path = nf.deployment_export(model, str(tmp_path / "model.ts"), input_example=example)
    other = {"input_ids": torch.randint(0, 11, (3, 7)), "attention_mask": torch.ones(3, 7, dtype=torch.long)}
    other["attention_mask"][0, 4:] = 0
    exported = torch.jit.load(path)(other["input_ids"], other["attention_mask"])[0]
    for m in model.modules.values():
        m.eval()
    with torch.no_grad():
        reference = run_graph(model.graph, {"model.inputs": other})[0]
    torch.testing.assert_close(exported, reference, rtol=1e-5, atol=1e-6)
