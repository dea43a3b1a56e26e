"""NeuralModule: init-param capture, wiring and its errors, eager calls, debug mode, weights, decorators."""
import logging
import re
import sys
import types
from pathlib import Path

import pytest
import torch

import nmod
from nmod import (
    AxisType,
    ChannelType,
    EmbeddedTextType,
    LabelsType,
    LogitsType,
    NeuralModule,
    NeuralPortMissingError,
    NeuralPortNameMismatchError,
    NeuralPortNmTensorMismatchError,
    NeuralTensorShapeError,
    NeuralType,
    NmTensor,
    add_port_docs,
    debug_mode,
    deprecated,
)
from nmod.backends.pytorch import TrainableNM
from nmod.core import Graph
from nmod.testing import ToyClassifier, ToyDataLayer, ToyEmbedding, ToyEncoder, ToyLoss, ToySpanHead

DOCS = Path(__file__).resolve().parents[2] / "docs"


class StrictEncoder(TrainableNM):
    """Asks for EmbeddedTextType, so plain ChannelType hidden states are too general for it (LESS)."""

    @property
    def input_ports(self):
        return {"hidden_states": NeuralType(("B", "T", "D"), EmbeddedTextType())}

    @property
    def output_ports(self):
        return {"hidden_states": NeuralType(("B", "T", "D"), EmbeddedTextType())}

    def __init__(self, name=None):
        super().__init__(name=name)

    def forward(self, hidden_states):
        return hidden_states


class FixedWidth(TrainableNM):
    """Identity on (B, D:4): forward itself would accept any shape, so only debug mode objects."""

    @property
    def input_ports(self):
        return {"x": NeuralType(("B", AxisType("D", 4)), ChannelType())}

    @property
    def output_ports(self):
        return {"y": NeuralType(("B", AxisType("D", 4)), ChannelType())}

    def __init__(self, flatten_output: bool = False, name=None):
        super().__init__(name=name)
        self.flatten_output = flatten_output

    def forward(self, x):
        return x.flatten() if self.flatten_output else x


# ---- init params ------------------------------------------------------------------------------
def test_init_params_are_captured_with_defaults_and_without_name():
    assert ToyEncoder(name="e").init_params == {"hidden_size": 8}
    assert ToyClassifier(16, name="c").init_params == {"hidden_size": 16, "num_classes": 3}
    assert ToyDataLayer(batch_size=2, name="d").init_params == {
        "num_examples": 8,
        "seq_len": 5,
        "vocab_size": 11,
        "num_classes": 3,
        "batch_size": 2,
        "shuffle": False,
        "seed": 0,
    }
    assert ToyLoss(name="l").init_params == {}


def test_init_params_merge_var_keyword_arguments():
    class WithKwargs(NeuralModule):
        def __init__(self, size: int, *args, name=None, **options):
            super().__init__(name=name)

    assert WithKwargs(3, name="w", mode="fast").init_params == {"size": 3, "mode": "fast"}


def test_init_params_is_a_copy():
    enc = ToyEncoder(name="e")
    enc.init_params["hidden_size"] = 99
    assert enc.init_params == {"hidden_size": 8}


def test_default_names_are_unique_per_class():
    a, b = ToyEncoder(), ToyEncoder()
    assert a.name != b.name
    assert a.name.startswith("ToyEncoder") and b.name.startswith("ToyEncoder")
    assert ToyEncoder(name="mine").name == "mine"


def test_wrong_init_arguments_raise_the_usual_type_error():
    with pytest.raises(TypeError, match="hidden_sise"):
        ToyEncoder(hidden_sise=3)


# ---- wiring -----------------------------------------------------------------------------------
def test_wiring_returns_typed_graph_tensors_and_records_one_call():
    data, emb = ToyDataLayer(name="data"), ToyEmbedding(name="emb")
    batch = data()
    assert batch._fields == ("input_ids", "attention_mask", "labels")  # output_ports order
    hidden = emb(input_ids=batch.input_ids)
    assert isinstance(hidden, NmTensor)
    assert hidden.producer is emb and hidden.port == "hidden_states"
    assert hidden.ntype == NeuralType(("B", "T", "D"), EmbeddedTextType())
    assert hidden.name == "emb.hidden_states"
    (call,) = emb._calls
    assert call.inputs == {"input_ids": batch.input_ids}
    assert call.outputs == {"hidden_states": hidden}


def test_multiple_outputs_come_back_as_a_namedtuple_in_port_order():
    hidden = ToyEmbedding(name="emb")(input_ids=ToyDataLayer(name="data")().input_ids)
    out = ToySpanHead(name="span")(hidden_states=hidden)
    assert out._fields == ("start_logits", "end_logits")
    assert [t.port for t in out] == ["start_logits", "end_logits"]
    assert out.start_logits.ntype == NeuralType(("B", "T"), LogitsType())


def test_a_subtype_is_accepted_and_optional_ports_may_be_left_out():
    batch = ToyDataLayer(name="data")()
    hidden = ToyEmbedding(name="emb")(input_ids=batch.input_ids)  # EmbeddedTextType
    enc = ToyEncoder(name="enc")
    out = enc(hidden_states=hidden)  # ChannelType port: GREATER, accepted; mask left out
    assert enc._calls[-1].inputs == {"hidden_states": hidden}
    out = enc(hidden_states=out, attention_mask=batch.attention_mask)
    assert set(enc._calls[-1].inputs) == {"hidden_states", "attention_mask"}


def _wired():
    data, emb = ToyDataLayer(name="data"), ToyEmbedding(name="emb")
    batch = data()
    return batch, emb(input_ids=batch.input_ids)


def test_unknown_port_name_is_refused_and_names_the_ports():
    batch, hidden = _wired()
    enc = ToyEncoder(name="enc")
    with pytest.raises(NeuralPortNameMismatchError) as info:
        enc(hidden_state=hidden)
    message = str(info.value)
    assert "enc (ToyEncoder) has no input port(s) ['hidden_state']" in message
    assert "['hidden_states', 'attention_mask']" in message
    assert isinstance(info.value, KeyError)  # so `except KeyError` code keeps working
    assert enc._calls == []


def test_missing_required_input_is_refused():
    batch, _ = _wired()
    enc = ToyEncoder(name="enc")
    with pytest.raises(NeuralPortMissingError, match=r"enc \(ToyEncoder\) needs input port\(s\) \['hidden_states'\]"):
        enc(attention_mask=batch.attention_mask)
    with pytest.raises(NeuralPortMissingError, match=r"needs input port\(s\) \['logits', 'labels'\]"):
        ToyLoss(name="loss")()  # no arguments at all: still a graph call, still checked
    assert enc._calls == []


def test_type_mismatch_message_names_both_modules_ports_types_and_result():
    batch, _ = _wired()
    cls = ToyClassifier(name="cls")
    with pytest.raises(NeuralPortNmTensorMismatchError) as info:
        cls(hidden_states=batch.input_ids)
    assert str(info.value) == (
        "ToyClassifier.hidden_states (module 'cls') expects (B, T, D) ChannelType but "
        "ToyDataLayer.input_ids (module 'data') gives (B, T) ChannelType: INCOMPATIBLE (the axes differ)"
    )
    assert isinstance(info.value, TypeError)
    assert cls._calls == []


@pytest.mark.parametrize(
    "wire, result",
    [
        (lambda b, h: ToyLoss(name="loss")(logits=b.labels, labels=b.labels), "INCOMPATIBLE"),
        (lambda b, h: ToyLoss(name="loss")(logits=b.input_ids, labels=b.labels), "INCOMPATIBLE"),
        (lambda b, h: StrictEncoder(name="strict")(hidden_states=ToyEncoder(name="e")(hidden_states=h)), "LESS"),
        (lambda b, h: ToyEncoder(name="enc")(hidden_states=h, attention_mask=b.labels), "INCOMPATIBLE"),
    ],
)
def test_every_refused_result_is_an_error(wire, result):
    batch, hidden = _wired()
    with pytest.raises(NeuralPortNmTensorMismatchError, match=f": {result}$"):
        wire(batch, hidden)


def test_transposed_tensor_is_refused_as_transpose_same():
    class TimeMajor(TrainableNM):
        @property
        def output_ports(self):
            return {"hidden_states": NeuralType(("T", "B", "D"), ChannelType())}

        def __init__(self, name=None):
            super().__init__(name=name)

    source = TimeMajor(name="time_major")()
    with pytest.raises(NeuralPortNmTensorMismatchError, match=r"gives \(T, B, D\) ChannelType: TRANSPOSE_SAME"):
        ToyEncoder(name="enc")(hidden_states=source)


def test_a_failed_call_leaves_the_graph_as_it_was():
    batch, hidden = _wired()
    enc = ToyEncoder(name="enc")
    good = enc(hidden_states=hidden)
    before = Graph([good]).structure()
    for bad in (
        lambda: enc(hidden_states=batch.input_ids),  # wrong type
        lambda: enc(hidden_states=hidden, attention_mask=batch.labels),  # second port wrong
        lambda: enc(hidden_states=hidden, mask=batch.attention_mask),  # wrong name
        lambda: enc(attention_mask=batch.attention_mask),  # missing input
        lambda: enc(hidden_states=hidden, attention_mask=torch.ones(4, 5)),  # mixed
    ):
        with pytest.raises((NeuralPortNmTensorMismatchError, NeuralPortNameMismatchError, TypeError)):
            bad()
        assert len(enc._calls) == 1
    assert Graph([good]).structure() == before


def test_positional_arguments_and_mixing_data_with_graph_tensors_are_refused():
    _, hidden = _wired()
    enc = ToyEncoder(name="enc")
    with pytest.raises(TypeError, match=r"keyword port names, e.g. enc\(hidden_states=..., attention_mask=...\)"):
        enc(hidden)
    with pytest.raises(TypeError, match=r"cannot mix graph tensors and real data \(ports \['attention_mask'\]\)"):
        enc(hidden_states=hidden, attention_mask=torch.ones(2, 3))


def test_a_module_without_a_backend_wires_but_does_not_run():
    class Pure(NeuralModule):
        @property
        def input_ports(self):
            return {"labels": NeuralType(("B",), LabelsType())}

        @property
        def output_ports(self):
            return {"labels": NeuralType(("B",), LabelsType())}

    pure = Pure(name="pure")
    labels = ToyDataLayer(name="data")().labels
    assert isinstance(pure(labels=labels), NmTensor)
    assert pure.num_weights == 0
    with pytest.raises(NotImplementedError, match="Pure has no weights to freeze"):
        pure.freeze()
    with pytest.raises(NotImplementedError, match="Pure cannot run eagerly"):
        pure(labels=torch.zeros(1))


# ---- eager mode -------------------------------------------------------------------------------
def test_eager_call_runs_forward_with_the_declared_math():
    enc = ToyEncoder(hidden_size=3, name="enc")
    with torch.no_grad():
        enc.dense.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]))
        enc.dense.bias.copy_(torch.tensor([0.0, 0.5, 0.0]))
    x = torch.tensor([[[1.0, 1.0, 1.0], [0.5, -1.0, 2.0]]])  # (B=1, T=2, D=3)
    mask = torch.tensor([[1, 0]])
    expected = torch.tanh(torch.tensor([[[1.0, 2.5, -1.0], [0.0, 0.0, 0.0]]]))
    expected[0, 1] = 0.0  # padded position
    assert torch.allclose(enc(hidden_states=x, attention_mask=mask), expected)
    unmasked = torch.tanh(torch.tensor([[[1.0, 2.5, -1.0], [0.5, -1.5, -2.0]]]))
    assert torch.allclose(enc(hidden_states=x), unmasked)  # optional port left out
    assert enc._calls == []  # eager calls add nothing to any graph


def test_eager_call_checks_port_names():
    enc = ToyEncoder(name="enc")
    with pytest.raises(NeuralPortNameMismatchError, match="no input port"):
        enc(states=torch.zeros(1, 2, 8))
    with pytest.raises(NeuralPortMissingError):
        enc(attention_mask=torch.ones(1, 2))


def test_eager_multi_output_returns_a_tuple_in_port_order():
    head = ToySpanHead(hidden_size=2, name="span")
    with torch.no_grad():
        head.qa_outputs.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        head.qa_outputs.bias.zero_()
    start, end = head(hidden_states=torch.tensor([[[3.0, 4.0], [5.0, 6.0]]]))
    assert start.tolist() == [[3.0, 5.0]] and end.tolist() == [[4.0, 6.0]]


def test_weight_sharing_in_eager_mode_sums_the_gradients_of_both_uses():
    enc = ToyEncoder(hidden_size=2, name="enc")
    x1 = torch.tensor([[[1.0, 2.0]]])
    x2 = torch.tensor([[[-1.0, 0.5]]])
    loss = enc(hidden_states=x1).sum() + enc(hidden_states=x2).sum()
    loss.backward()
    # d/dW sum(tanh(W x + b)) = (1 - tanh(W x + b)^2) x^T, summed over both uses.
    W, b = enc.dense.weight.detach(), enc.dense.bias.detach()
    expected_w = torch.zeros(2, 2)
    expected_b = torch.zeros(2)
    for x in (x1[0, 0], x2[0, 0]):
        g = 1 - torch.tanh(W @ x + b) ** 2
        expected_w += torch.outer(g, x)
        expected_b += g
    assert torch.allclose(enc.dense.weight.grad, expected_w)
    assert torch.allclose(enc.dense.bias.grad, expected_b)
    one_use = torch.outer(1 - torch.tanh(W @ x1[0, 0] + b) ** 2, x1[0, 0])
    assert not torch.allclose(enc.dense.weight.grad, one_use)  # the second use did contribute


# ---- debug mode -------------------------------------------------------------------------------
def test_debug_mode_checks_rank():
    enc = ToyEncoder(name="enc")
    enc(hidden_states=torch.zeros(2, 3, 8))
    with debug_mode():
        with pytest.raises(NeuralTensorShapeError) as info:
            enc(hidden_states=torch.zeros(2, 8))
    assert str(info.value) == (
        "enc.hidden_states (input) declares 3 axes (B, T, D) but got a tensor of shape (2, 8)"
    )


def test_debug_mode_checks_fixed_sizes_of_inputs_and_outputs():
    fixed = FixedWidth(name="fixed")
    assert fixed(x=torch.zeros(2, 5)).shape == (2, 5)  # not checked outside debug mode
    with debug_mode() as context:
        assert context.debug
        assert fixed(x=torch.zeros(3, 4)).shape == (3, 4)  # B is free, D is 4
        with pytest.raises(NeuralTensorShapeError, match=r"fixed.x \(input\) axis 1 \(D:4\) must have size 4, got 5"):
            fixed(x=torch.zeros(2, 5))
        with pytest.raises(NeuralTensorShapeError, match=r"fixed_out.y \(output\) declares 2 axes"):
            FixedWidth(flatten_output=True, name="fixed_out")(x=torch.zeros(2, 4))
    assert not nmod.default_context.debug


def test_debug_mode_is_restored_after_an_exception_and_can_be_nested():
    with pytest.raises(RuntimeError):
        with debug_mode():
            raise RuntimeError("boom")
    assert not nmod.default_context.debug
    with debug_mode():
        with debug_mode(False):
            assert not nmod.default_context.debug
        assert nmod.default_context.debug


def test_debug_mode_skips_list_axes_and_axisless_ports():
    loss = ToyLoss(name="loss")
    with debug_mode():  # the scalar loss output has axes=None: nothing to check
        value = loss(logits=torch.zeros(2, 3), labels=torch.tensor([0, 1]))
    assert torch.isclose(value, torch.log(torch.tensor(3.0)))


# ---- weights ----------------------------------------------------------------------------------
def test_freeze_and_unfreeze():
    cls = ToyClassifier(hidden_size=8, num_classes=3, name="cls")
    assert cls.num_weights == 8 * 3 + 3
    cls.freeze()
    assert cls.num_weights == 0
    assert not any(p.requires_grad for p in cls.parameters())
    enc = ToyEncoder(name="enc")
    cls(hidden_states=enc(hidden_states=torch.randn(2, 3, 8))).sum().backward()
    assert cls.dense.weight.grad is None and enc.dense.weight.grad is not None  # gradient still flows through
    cls.unfreeze()
    assert cls.num_weights == 27
    assert all(p.requires_grad for p in cls.parameters())


def test_save_to_and_restore_from_give_the_same_numbers(tmp_path):
    a, b = ToyEncoder(name="a"), ToyEncoder(name="b")
    x = torch.randn(2, 3, 8)
    assert not torch.equal(a(hidden_states=x), b(hidden_states=x))
    a.save_to(tmp_path / "sub" / "a.pt")
    b.restore_from(tmp_path / "sub" / "a.pt")
    assert torch.equal(a(hidden_states=x), b(hidden_states=x))
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.pt"]  # no temporary file left


def test_restore_from_a_file_that_does_not_fit_says_which(tmp_path):
    ToyEncoder(hidden_size=8, name="a").save_to(tmp_path / "a.pt")
    with pytest.raises(ValueError, match=r"(?s)a.pt does not fit ToyEncoder 'small': .*size mismatch for dense.weight"):
        ToyEncoder(hidden_size=4, name="small").restore_from(tmp_path / "a.pt")
    ToyEmbedding(name="emb").save_to(tmp_path / "emb.pt")
    with pytest.raises(ValueError, match=r"missing keys \['dense.bias', 'dense.weight'\], unexpected keys \['word_embeddings.weight'\]"):
        ToyEncoder(name="enc").restore_from(tmp_path / "emb.pt")
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        ToyEncoder(name="enc").restore_from(tmp_path / "nope.pt")


# ---- decorators -------------------------------------------------------------------------------
def test_add_port_docs_puts_the_ports_in_the_docstring():
    class Documented(TrainableNM):
        @property
        @add_port_docs
        def input_ports(self):
            """What comes in."""
            return {"input_ids": NeuralType(("B", "T"), ChannelType())}

        @property
        @add_port_docs(header="Outputs:")
        def output_ports(self):
            return {}

        def __init__(self, size: int = 2, name=None):
            super().__init__(name=name)

    doc = Documented.input_ports.__doc__
    assert doc.startswith("What comes in.")
    assert "Ports:\n    * *input_ids* : (B, T) ChannelType" in doc
    assert "Outputs:\n    (none)" in Documented.output_ports.__doc__
    assert Documented(name="d").input_ports == {"input_ids": NeuralType(("B", "T"), ChannelType())}


def test_add_port_docs_on_ports_that_depend_on_init_params():
    class Dependent(TrainableNM):
        @property
        @add_port_docs
        def output_ports(self):
            return {"logits": NeuralType(("B", AxisType("C", self.num_classes)), LogitsType())}

        def __init__(self, num_classes: int, name=None):
            super().__init__(name=name)
            self.num_classes = num_classes

    assert "(depend on the module's init parameters)" in Dependent.output_ports.__doc__
    assert Dependent(5, name="dep").output_ports["logits"].axes[1] == AxisType("C", 5)


class _Records(logging.Handler):
    """Collects the 'nmod' logger's records directly, whatever its propagation is set to."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def nmod_log():
    handler, logger = _Records(), logging.getLogger("nmod")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_deprecated_warns_once_per_process(nmod_log):
    @deprecated(version="0.3", explanation="Use new_helper instead.")
    def old_helper(x):
        return x + 1

    @deprecated
    class OldThing:
        def __init__(self, v):
            self.v = v

    assert [old_helper(i) for i in range(3)] == [1, 2, 3]
    assert OldThing(4).v == 4 and OldThing(5).v == 5
    messages = [r.getMessage() for r in nmod_log.records]
    assert messages == [
        "test_deprecated_warns_once_per_process.<locals>.old_helper is deprecated and will be removed "
        "in version 0.3. Use new_helper instead.",
        "test_deprecated_warns_once_per_process.<locals>.OldThing is deprecated.",
    ]


def test_deprecated_functions_with_the_same_name_in_different_modules_each_warn(nmod_log):
    def make(module_name):
        def helper():
            return module_name

        helper.__module__ = module_name
        return deprecated(helper)

    first, second = make("pkg_one"), make("pkg_two")
    assert (first(), second(), first()) == ("pkg_one", "pkg_two", "pkg_one")
    messages = [r.getMessage() for r in nmod_log.records]
    assert len(messages) == 2 and all(m.endswith("make.<locals>.helper is deprecated.") for m in messages)


# ---- the "write your own neural module" guide, run verbatim ----------------------------------
def _python_blocks(markdown: str) -> list:
    return re.findall(r"^```python\n(.*?)^```", markdown, flags=re.S | re.M)


def test_the_guide_runs_as_written(tmp_path, monkeypatch, capsys):
    blocks = _python_blocks((DOCS / "neural_modules.md").read_text())
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)  # the guide writes tagger.yaml, tagger.pt, graph.yaml, graph.dot
    module = types.ModuleType("nmod_guide_example")  # importable by class path, as a user's module is
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for block in blocks:
        exec(compile(block, str(DOCS / "neural_modules.md"), "exec"), module.__dict__)
    ns = module.__dict__
    printed = capsys.readouterr().out

    # The class written the guide's way behaves as the guide says.
    TokenClassifier, tagger, graph = ns["TokenClassifier"], ns["tagger"], ns["graph"]
    assert "* *hidden_states* : (B, T, D) ChannelType" in TokenClassifier.input_ports.__doc__
    assert "* *logits* : (B, T, C) LogitsType" in TokenClassifier.output_ports.__doc__
    assert tagger.num_weights == 8 * 5 + 5
    assert "tagger.hidden_states (input) declares 3 axes (B, T, D) but got a tensor of shape (2, 8)" in printed
    assert (
        "TokenClassifier.hidden_states (module 'tagger') expects (B, T, D) ChannelType but "
        "ToyDataLayer.input_ids (module 'data') gives (B, T) ChannelType: INCOMPATIBLE" in printed
    )
    assert [graph.label(c) for c in graph.calls] == ["data", "embed", "tagger"]
    assert len(tagger._calls) == 1  # the refused call left nothing behind
    assert re.search(r"^tagger +TokenClassifier +hidden_states<-embed.hidden_states +logits +45$", printed, re.M)

    # The files it wrote.
    config = (tmp_path / "tagger.yaml").read_text()
    assert "full_spec: nmod_guide_example.TokenClassifier" in config
    assert ns["copy"].init_params == {"hidden_size": 8, "num_classes": 5, "dropout": 0.0}
    assert '"embed" -> "tagger"' in (tmp_path / "graph.dot").read_text()

    # The guide's promise about freezing.
    tagger.freeze()
    assert tagger.num_weights == 0
    tagger.unfreeze()
    assert tagger.num_weights == 45


def test_every_public_class_has_a_docstring():
    import inspect

    import nmod.backends.pytorch
    import nmod.testing
    import nmod.types

    undocumented = [
        f"{mod.__name__}.{name}"
        for mod in (nmod.types, nmod.core, nmod.backends.pytorch, nmod.testing)
        for name in mod.__all__
        if inspect.isclass(getattr(mod, name)) and not getattr(mod, name).__dict__.get("__doc__")
    ]
    assert undocumented == []
