"""Graph: planning, shared modules, summary, DOT, and YAML export/import of whole graphs."""
import re
import textwrap
from pathlib import Path

import pytest
import torch

from nmod import (
    ConfigFieldError,
    GraphCycleError,
    GraphError,
    NeuralModule,
    NeuralPortMissingError,
    NeuralPortNmTensorMismatchError,
)
from nmod.core import Graph
from nmod.testing import ToyClassifier, ToyDataLayer, ToyEmbedding, ToyEncoder, ToyLoss, ToySpanHead, run_graph

LABELS = ["data", "emb", "enc", "enc#1", "cls", "loss"]


def _reference_loss(m, batch):
    """The toy graph's loss computed by hand, without nmod: emb -> enc(masked) -> enc -> mean -> linear -> CE."""
    x = m["emb"].word_embeddings.weight[batch["input_ids"]]
    W, b = m["enc"].dense.weight, m["enc"].dense.bias
    h = torch.tanh(x @ W.T + b) * batch["attention_mask"].unsqueeze(-1)
    h = torch.tanh(h @ W.T + b)
    logits = h.mean(dim=1) @ m["cls"].dense.weight.T + m["cls"].dense.bias
    log_probs = logits - logits.logsumexp(dim=-1, keepdim=True)
    return -log_probs[torch.arange(len(batch["labels"])), batch["labels"]].mean(), logits


# ---- planning ---------------------------------------------------------------------------------
def test_plan_is_topological_and_shares_the_module(toy_graph):
    graph, m = toy_graph
    assert [graph.label(c) for c in graph.calls] == LABELS
    assert [c.module for c in graph.calls] == [m["data"], m["emb"], m["enc"], m["enc"], m["cls"], m["loss"]]
    assert graph.modules == [m["data"], m["emb"], m["enc"], m["cls"], m["loss"]]  # the shared one once
    assert [graph.label(c) for c in graph.sources] == ["data"]
    position = {c.uid: i for i, c in enumerate(graph.calls)}
    for call in graph.calls:
        for t in call.inputs.values():
            assert position[t.call.uid] < position[call.uid]
    assert [graph.tensor_name(t) for t in graph.outputs] == ["loss.loss", "cls.logits"]


def test_plan_only_holds_what_the_outputs_need_and_is_made_once():
    data, emb, enc, cls = ToyDataLayer(name="data"), ToyEmbedding(name="emb"), ToyEncoder(name="enc"), ToyClassifier(name="cls")
    batch = data()
    hidden = emb(input_ids=batch.input_ids)
    side = enc(hidden_states=hidden)  # not needed for the logits below
    logits = cls(hidden_states=hidden)
    graph = Graph([logits])
    assert [graph.label(c) for c in graph.calls] == ["data", "emb", "cls"]
    plan = list(graph.calls)
    cls(hidden_states=side)  # wiring more afterwards does not change a built graph
    assert graph.calls == plan


def test_the_order_of_outputs_does_not_break_the_plan():
    data, emb, cls, loss = ToyDataLayer(name="data"), ToyEmbedding(name="emb"), ToyClassifier(name="cls"), ToyLoss(name="loss")
    batch = data()
    logits = cls(hidden_states=emb(input_ids=batch.input_ids))
    value = loss(logits=logits, labels=batch.labels)
    graph = Graph([batch.labels, value, logits])
    assert [graph.label(c) for c in graph.calls] == ["data", "emb", "cls", "loss"]


def test_a_re_used_module_keeps_its_call_number_in_every_graph():
    batch = ToyDataLayer(name="data")()
    hidden = ToyEmbedding(name="emb")(input_ids=batch.input_ids)
    enc = ToyEncoder(name="enc")
    enc(hidden_states=hidden)
    second = enc(hidden_states=hidden)
    assert second.name == "enc#1.hidden_states"
    graph = Graph([second])  # the first call is not part of this graph: the name does not change
    assert [graph.label(c) for c in graph.calls] == ["data", "emb", "enc#1"]
    assert graph.tensor_name(second) == second.name


def _wire_eval_then_train():
    """As a recipe does: the shared modules are wired for evaluation first, then for training."""
    emb, enc, cls = ToyEmbedding(name="emb"), ToyEncoder(name="enc"), ToyClassifier(name="cls")
    loss_fn = ToyLoss(name="loss")

    def pipeline(data):
        batch = data()
        hidden = enc(hidden_states=emb(input_ids=batch.input_ids), attention_mask=batch.attention_mask)
        logits = cls(hidden_states=hidden)
        return logits, loss_fn(logits=logits, labels=batch.labels)

    eval_logits, _ = pipeline(ToyDataLayer(name="eval_data"))
    train_logits, train_loss = pipeline(ToyDataLayer(name="train_data"))
    return eval_logits, train_logits, train_loss


def test_a_tensor_has_one_name_in_every_graph_print_and_export(tmp_path):
    eval_logits, train_logits, train_loss = _wire_eval_then_train()
    assert (eval_logits.name, train_logits.name, train_loss.name) == ("cls.logits", "cls#1.logits", "loss#1.loss")
    train = Graph([train_loss, train_logits])
    both = Graph([eval_logits, train_loss])
    assert [train.label(c) for c in train.calls] == ["train_data", "emb#1", "enc#1", "cls#1", "loss#1"]
    assert [both.label(c) for c in both.calls] == [
        "eval_data", "emb", "enc", "cls", "train_data", "emb#1", "enc#1", "cls#1", "loss#1"]
    for graph in (train, both):
        for call in graph.calls:
            assert graph.label(call) == call.label
            for tensor in call.outputs.values():
                assert graph.tensor_name(tensor) == tensor.name
    assert "hidden_states<-enc#1.hidden_states" in train.summary()
    assert '"emb#1" -> "enc#1"' in train.to_dot()
    train.export_to_yaml(tmp_path / "train.yaml")
    exported = (tmp_path / "train.yaml").read_text()
    assert "cls#1.logits" in exported and "cls.logits" not in exported.replace("cls#1.logits", "")
    assert train.structure()["outputs"] == [train_loss.name, train_logits.name]


def test_a_graph_rebuilt_from_its_file_is_equal_though_its_calls_are_renumbered(tmp_path):
    _, train_logits, train_loss = _wire_eval_then_train()
    train = Graph([train_loss, train_logits])
    train.export_to_yaml(tmp_path / "train.yaml")
    rebuilt = Graph.import_from_yaml(tmp_path / "train.yaml")
    # Fresh modules: their first calls. The names are the rebuilt tensors' own, everywhere.
    assert [rebuilt.label(c) for c in rebuilt.calls] == ["train_data", "emb", "enc", "cls", "loss"]
    assert [t.name for t in rebuilt.outputs] == ["loss.loss", "cls.logits"]
    assert rebuilt == train


def test_calls_whose_labels_collide_are_refused():
    batch = ToyDataLayer(name="data")()
    hidden = ToyEmbedding(name="emb")(input_ids=batch.input_ids)
    enc = ToyEncoder(name="enc")
    out = ToyEncoder(name="enc#1")(hidden_states=enc(hidden_states=enc(hidden_states=hidden)))
    with pytest.raises(GraphError, match="Two calls are both labelled 'enc#1'.*rename module 'enc#1'"):
        Graph([out])


def test_graph_outputs_must_be_graph_tensors():
    with pytest.raises(GraphError, match="must be NmTensors from wiring modules, got tensor"):
        Graph([torch.zeros(1)])


def test_two_modules_with_one_name_are_refused():
    batch = ToyDataLayer(name="data")()
    hidden = ToyEmbedding(name="twin")(input_ids=batch.input_ids)
    out = ToyEncoder(name="twin")(hidden_states=hidden)
    with pytest.raises(GraphError, match="Two different modules are both named 'twin'"):
        Graph([out])


def test_a_cycle_in_memory_is_found():
    batch = ToyDataLayer(name="data")()
    hidden = ToyEmbedding(name="emb")(input_ids=batch.input_ids)
    a, b = ToyEncoder(name="a"), ToyEncoder(name="b")
    out_a = a(hidden_states=hidden)
    out_b = b(hidden_states=out_a)
    out_a.call.inputs["hidden_states"] = out_b  # only possible by tampering: wiring cannot make cycles
    with pytest.raises(GraphCycleError, match="Module calls form a cycle: b -> a -> b"):
        Graph([out_b])


# ---- eager evaluation of a planned graph, weight sharing --------------------------------------
def test_running_the_graph_matches_the_hand_computed_reference(toy_graph, toy_batch):
    graph, m = toy_graph
    loss, logits = run_graph(graph, toy_batch)
    ref_loss, ref_logits = _reference_loss(m, toy_batch["data"])
    assert torch.allclose(logits, ref_logits, atol=1e-6)
    assert torch.allclose(loss, ref_loss, atol=1e-6)


def test_the_shared_module_gets_gradient_from_both_of_its_calls(toy_graph, toy_batch):
    graph, m = toy_graph
    run_graph(graph, toy_batch)[0].backward()
    grad = m["enc"].dense.weight.grad.clone()
    m["enc"].zero_grad()
    _reference_loss(m, toy_batch["data"])[0].backward()
    assert torch.allclose(grad, m["enc"].dense.weight.grad, atol=1e-6)
    # Dropping either use changes the gradient, so both contributed.
    m["enc"].zero_grad()
    x = m["emb"].word_embeddings.weight[toy_batch["data"]["input_ids"]]
    h = m["enc"](hidden_states=x, attention_mask=toy_batch["data"]["attention_mask"])
    m["loss"](logits=m["cls"](hidden_states=h), labels=toy_batch["data"]["labels"]).backward()
    assert not torch.allclose(grad, m["enc"].dense.weight.grad)


# ---- summary and DOT --------------------------------------------------------------------------
def test_summary_lists_calls_edges_ports_and_parameter_counts(toy_graph):
    graph, _ = toy_graph
    lines = graph.summary().splitlines()
    assert lines[0].split() == ["call", "class", "inputs", "outputs", "params"]
    assert set(lines[1]) == {"-", " "}
    rows = [[cell for cell in line.split("  ") if cell] for line in lines[2:-1]]
    assert [[c.strip() for c in row] for row in rows] == [
        ["data", "ToyDataLayer", "-", "input_ids, attention_mask, labels", "0"],
        ["emb", "ToyEmbedding", "input_ids<-data.input_ids", "hidden_states", "88"],
        ["enc", "ToyEncoder", "hidden_states<-emb.hidden_states, attention_mask<-data.attention_mask", "hidden_states", "72"],
        ["enc#1", "ToyEncoder", "hidden_states<-enc.hidden_states", "hidden_states", "72"],
        ["cls", "ToyClassifier", "hidden_states<-enc#1.hidden_states", "logits", "27"],
        ["loss", "ToyLoss", "logits<-cls.logits, labels<-data.labels", "loss", "0"],
    ]
    # 11*8 embedding + (8*8+8) encoder counted once though called twice + (8*3+3) classifier
    assert lines[-1] == "5 modules, 6 calls, 187 parameters"


def test_summary_counts_only_trainable_weights(toy_graph):
    graph, m = toy_graph
    m["emb"].freeze()
    assert graph.summary().splitlines()[-1] == "5 modules, 6 calls, 99 parameters"


def test_dot_export(tmp_path):
    batch = ToyDataLayer(name="data")()
    out = ToySpanHead(name="span")(hidden_states=ToyEmbedding(name="emb")(input_ids=batch.input_ids))
    graph = Graph([out.start_logits, out.end_logits])
    text = graph.to_dot(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text() == text
    assert text == textwrap.dedent(
        """\
        digraph nmod {
          rankdir=LR;
          node [shape=box, fontname="Helvetica"];
          "data" [label="data\\nToyDataLayer"];
          "emb" [label="emb\\nToyEmbedding"];
          "span" [label="span\\nToySpanHead"];
          "data" -> "emb" [label="input_ids -> input_ids\\n(B, T) ChannelType"];
          "emb" -> "span" [label="hidden_states -> hidden_states\\n(B, T, D) EmbeddedTextType"];
        }
        """
    )


def test_dot_shows_both_calls_of_a_shared_module(toy_graph):
    text = toy_graph[0].to_dot()
    assert '"enc#1" [label="enc#1\\nToyEncoder"];' in text
    assert '"enc" -> "enc#1" [label="hidden_states -> hidden_states\\n(B, T, D) ChannelType"];' in text
    assert '"data" -> "loss" [label="labels -> labels\\n(B) LabelsType"];' in text


# ---- YAML round trip --------------------------------------------------------------------------
def test_yaml_round_trip_rebuilds_an_equal_graph_and_the_same_numbers(toy_graph, toy_batch, tmp_path):
    graph, m = toy_graph
    graph.export_to_yaml(tmp_path / "graph.yaml")
    for name, module in m.items():
        if module.num_weights:
            module.save_to(tmp_path / f"{name}.pt")

    rebuilt = Graph.import_from_yaml(tmp_path / "graph.yaml")
    assert rebuilt == graph
    assert rebuilt.structure() == graph.structure()
    assert [rebuilt.label(c) for c in rebuilt.calls] == LABELS
    new = {mod.name: mod for mod in rebuilt.modules}
    assert all(new[k] is not m[k] and type(new[k]) is type(m[k]) for k in m)
    assert rebuilt.calls[2].module is rebuilt.calls[3].module  # still shared

    before = run_graph(rebuilt, toy_batch)[0]
    for name in m:
        if m[name].num_weights:
            new[name].restore_from(tmp_path / f"{name}.pt")
    after, expected = run_graph(rebuilt, toy_batch)[0], run_graph(graph, toy_batch)[0]
    assert not torch.equal(before, expected)  # fresh random weights differ ...
    assert torch.equal(after, expected)  # ... restored ones give the very same numbers


def test_yaml_round_trip_of_a_multi_output_graph(tmp_path):
    batch = ToyDataLayer(name="data")()
    out = ToySpanHead(name="span")(hidden_states=ToyEmbedding(name="emb")(input_ids=batch.input_ids))
    graph = Graph([out.end_logits, out.start_logits])
    graph.export_to_yaml(tmp_path / "g.yaml")
    rebuilt = Graph.import_from_yaml(tmp_path / "g.yaml")
    assert rebuilt == graph
    assert [t.port for t in rebuilt.outputs] == ["end_logits", "start_logits"]


def test_graphs_that_differ_are_not_equal():
    def build(hidden_size=8, mask=True, name="enc"):
        batch = ToyDataLayer(name="data")()
        hidden = ToyEmbedding(hidden_size=hidden_size, name="emb")(input_ids=batch.input_ids)
        extra = {"attention_mask": batch.attention_mask} if mask else {}
        return Graph([ToyEncoder(hidden_size=hidden_size, name=name)(hidden_states=hidden, **extra)])

    assert build() == build()
    assert build() != build(hidden_size=16)  # an init param
    assert build() != build(mask=False)  # an edge
    assert build() != build(name="encoder")  # a name
    assert build().__eq__("graph") is NotImplemented


def _write(tmp_path, text, name="graph.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


MODULES = """\
header: {kind: nmod.Graph, nmod_version: 0.1.0}
modules:
  data: {header: {full_spec: nmod.testing.ToyDataLayer}, init_params: {}}
  emb: {header: {full_spec: nmod.testing.ToyEmbedding}, init_params: {}}
  a: {header: {full_spec: nmod.testing.ToyEncoder}, init_params: {}}
  b: {header: {full_spec: nmod.testing.ToyEncoder}, init_params: {}}
"""


@pytest.fixture
def no_module_built(monkeypatch):
    """Fails the test if the import builds any module: bad files must be refused before that."""
    built = []
    original = NeuralModule.from_config_dict.__func__

    def spy(cls, *args, **kwargs):
        built.append(args)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(NeuralModule, "from_config_dict", classmethod(spy))
    yield
    assert built == []


def test_a_hand_written_cycle_is_refused_before_anything_is_built(tmp_path, no_module_built):
    path = _write(
        tmp_path,
        MODULES
        + """\
calls:
- {id: data, module: data}
- {id: emb, module: emb, inputs: {input_ids: data.input_ids}}
- {id: a, module: a, inputs: {hidden_states: b.hidden_states}}
- {id: b, module: b, inputs: {hidden_states: a.hidden_states}}
outputs: [b.hidden_states]
""",
    )
    with pytest.raises(GraphCycleError, match=rf"{path}: calls form a cycle: a -> b -> a"):
        Graph.import_from_yaml(path)


def test_a_call_reading_itself_is_a_cycle(tmp_path, no_module_built):
    path = _write(tmp_path, MODULES + "calls:\n- {id: a, module: a, inputs: {hidden_states: a.hidden_states}}\noutputs: [a.hidden_states]\n")
    with pytest.raises(GraphCycleError, match="a -> a"):
        Graph.import_from_yaml(path)


@pytest.mark.parametrize(
    "body, message",
    [
        ("outputs: []\n", "missing field 'calls'"),
        ("calls: {}\noutputs: []\n", "field 'calls' must be a list, found dict"),
        ("calls: []\n", "missing field 'outputs'"),
        ("calls: [data]\noutputs: []\n", r"calls\[0\]: expected a mapping, found str"),
        ("calls: [{module: data}]\noutputs: []\n", r"calls\[0\]: missing field 'id'"),
        ("calls: [{id: x, module: nobody}]\noutputs: []\n", "module 'nobody' is not defined under 'modules'"),
        ("calls: [{id: data, module: data}, {id: data, module: data}]\noutputs: []\n", "duplicate call id 'data'"),
        ("calls: [{id: emb, module: emb, inputs: {input_ids: ghost.input_ids}}]\noutputs: []\n", "reads 'ghost.input_ids' but no call 'ghost' exists"),
        ("calls: [{id: emb, module: emb, inputs: {input_ids: data}}]\noutputs: []\n", "must look like '<call id>.<port>', found 'data'"),
        ("calls: [{id: data, module: data}]\noutputs: [ghost.labels]\n", r"outputs \['ghost.labels'\] name calls that do not exist"),
    ],
)
def test_graph_files_lacking_fields_are_refused_before_anything_is_built(tmp_path, no_module_built, body, message):
    path = _write(tmp_path, MODULES + body)
    with pytest.raises(ConfigFieldError, match=rf"^{path}.*{message}"):
        Graph.import_from_yaml(path)


def test_a_file_that_is_not_a_graph_is_refused(tmp_path, no_module_built):
    ToyEncoder(name="enc").export_to_config(tmp_path / "enc.yaml")
    with pytest.raises(ConfigFieldError, match="header.kind must be 'nmod.Graph', found None"):
        Graph.import_from_yaml(tmp_path / "enc.yaml")


@pytest.mark.parametrize(
    "calls, error, message",
    [
        (
            "- {id: data, module: data}\n- {id: a, module: a, inputs: {hidden_states: data.input_ids}}\n",
            NeuralPortNmTensorMismatchError,
            "call 'a': ToyEncoder.hidden_states (module 'a') expects (B, T, D) ChannelType but "
            "ToyDataLayer.input_ids (module 'data') gives (B, T) ChannelType: INCOMPATIBLE",
        ),
        ("- {id: a, module: a}\n", NeuralPortMissingError, "call 'a': a (ToyEncoder) needs input port(s) ['hidden_states']"),
        (
            "- {id: data, module: data}\n- {id: emb, module: emb, inputs: {input_ids: data.input_id}}\n",
            ConfigFieldError,
            "call 'emb' reads 'data.input_id', but that call has no output port 'input_id'",
        ),
        (
            "- {id: data, module: data}\n- {id: emb, module: emb, inputs: {input_ids: data.input_ids}}\n"
            "- {id: a, module: a, inputs: {hidden_states: emb.hidden_state}}\n",
            ConfigFieldError,
            "reads 'emb.hidden_state', but that call has no output port 'hidden_state' (it has ['hidden_states'])",
        ),
    ],
)
def test_bad_edges_in_a_graph_file_name_the_file_and_call(tmp_path, calls, error, message):
    path = _write(tmp_path, MODULES + "calls:\n" + calls + "outputs: []\n")
    with pytest.raises(error) as info:
        Graph.import_from_yaml(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)


def test_a_module_config_inside_a_graph_file_is_checked(tmp_path):
    path = _write(
        tmp_path,
        """\
        header: {kind: nmod.Graph}
        modules:
          data: {header: {full_spec: nmod.testing.ToyDataLayer}, init_params: {batch_sise: 2}}
        calls: [{id: data, module: data}]
        outputs: [data.labels]
        """,
    )
    expected = rf"{path}: modules.data: init_params do not fit nmod.testing.ToyDataLayer: .*batch_sise"
    with pytest.raises(ConfigFieldError, match=expected):
        Graph.import_from_yaml(path)
    not_a_mapping = MODULES.replace("init_params: {}}\n  a:", "init_params: {}}\n  c: 3\n  a:")
    path = _write(tmp_path, not_a_mapping + "calls: [{id: data, module: data}]\noutputs: [data.labels]\n")
    with pytest.raises(ConfigFieldError, match="modules.c: expected a mapping with 'header' and 'init_params', found 3"):
        Graph.import_from_yaml(path)


def test_hand_written_graph_file_with_a_shared_module_runs(tmp_path, toy_batch):
    path = _write(
        tmp_path,
        MODULES
        + """\
calls:
- {id: data, module: data}
- {id: emb, module: emb, inputs: {input_ids: data.input_ids}}
- {id: a, module: a, inputs: {hidden_states: emb.hidden_states, attention_mask: data.attention_mask}}
- {id: a#1, module: a, inputs: {hidden_states: a.hidden_states}}
outputs: [a#1.hidden_states]
""",
    )
    graph = Graph.import_from_yaml(path)
    assert [graph.label(c) for c in graph.calls] == ["data", "emb", "a", "a#1"]
    (out,) = run_graph(graph, toy_batch)
    enc = graph.calls[2].module
    x = graph.calls[1].module.word_embeddings.weight[toy_batch["data"]["input_ids"]]
    mask = toy_batch["data"]["attention_mask"].unsqueeze(-1)
    expected = torch.tanh(enc.dense(torch.tanh(enc.dense(x)) * mask))
    assert torch.allclose(out, expected, atol=1e-6)


def test_the_overview_example_runs(tmp_path, monkeypatch, capsys):
    """docs/index.md's pipeline, run as written."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "index.md"
    (block,) = re.findall(r"^```python\n(.*?)^```", doc.read_text(), flags=re.S | re.M)
    monkeypatch.chdir(tmp_path)
    ns = {}
    exec(compile(block, str(doc), "exec"), ns)
    assert [ns["graph"].label(c) for c in ns["graph"].calls] == ["data", "embed", "encoder", "encoder#1", "classifier", "loss"]
    assert capsys.readouterr().out.splitlines()[-1] == "5 modules, 6 calls, 187 parameters"
    assert (tmp_path / "pipeline.yaml").is_file()
