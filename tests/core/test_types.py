"""Neural types: axis parsing, the element-type hierarchy, and every comparison result."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

from nmod.types import (
    AxisKind,
    AxisType,
    ChannelType,
    ElementType,
    EmbeddedTextType,
    IndexType,
    LabelsType,
    LengthsType,
    LogitsType,
    LogprobsType,
    LossType,
    MaskType,
    NeuralType,
    NeuralTypeComparisonResult as R,
    PredictionsType,
    StringType,
    VoidType,
)

B, T, D = "B", "T", "D"


def nt(axes, elements=None, optional=False):
    return NeuralType(axes, elements or ChannelType(), optional=optional)


# ---- axes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "label, kind",
    [
        ("B", AxisKind.Batch),
        ("T", AxisKind.Time),
        ("D", AxisKind.Dimension),
        ("C", AxisKind.Channel),
        ("C", AxisKind.Dimension),  # NeMo: Channel is Dimension under another name
        ("channel", AxisKind.Dimension),
        ("N", AxisKind.Batch),
        ("W", AxisKind.Width),
        ("H", AxisKind.Height),
        ("seq", AxisKind.Sequence),
        ("Sequence", AxisKind.Sequence),
        ("any", AxisKind.Any),
        ("Any", AxisKind.Any),
        ("Batch", AxisKind.Batch),
        (" t ", AxisKind.Time),
    ],
)
def test_axis_kind_from_str(label, kind):
    assert AxisKind.from_str(label) is kind


def test_axis_kinds_have_nemos_values_and_channel_is_an_alias():
    assert AxisKind.Channel is AxisKind.Dimension
    assert {k.name: k.value for k in AxisKind} == {
        "Batch": 0, "Time": 1, "Dimension": 2, "Width": 3, "Height": 4, "Any": 5, "Sequence": 6,
    }


def test_axis_kind_unknown_label_lists_the_known_ones():
    known = r"'B', 'N', 'T', 'D', 'C', 'W', 'H', 'seq', 'any'"
    with pytest.raises(ValueError, match=rf"Unknown axis kind 'Q'; expected one of {known}"):
        AxisKind.from_str("Q")


def test_axis_type_fields_equality_and_repr():
    axis = AxisType("D", 32)
    assert (axis.kind, axis.size, axis.is_list) == (AxisKind.Dimension, 32, False)
    assert axis == AxisType(AxisKind.Dimension, 32)
    assert axis != AxisType("D") and axis != AxisType("D", 32, is_list=True)
    assert len({axis, AxisType("D", 32), AxisType("D")}) == 2
    assert repr(axis) == "D:32"
    assert repr(AxisType("B", 2, is_list=True)) == "list[B:2]"


def test_a_channel_axis_equals_a_dimension_axis_but_prints_as_declared():
    assert AxisType("C", 5) == AxisType("D", 5) == AxisType(AxisKind.Channel, 5)
    assert hash(AxisType("C")) == hash(AxisType("D"))
    assert (repr(AxisType("C", 5)), repr(AxisType("channel")), repr(AxisType("D"))) == ("C:5", "C", "D")
    assert repr(AxisType(AxisKind.Channel)) == "D"  # the alias is the same member: nothing to remember
    assert str(NeuralType(("B", "T", "C"), LogitsType())) == "(B, T, C) LogitsType"
    assert NeuralType(("B", "C")) == NeuralType(("B", "D"))


def test_axis_type_rejects_bad_kind_and_size():
    with pytest.raises(TypeError, match="AxisKind or a string"):
        AxisType(3)
    with pytest.raises(ValueError, match="non-negative int"):
        AxisType("D", -1)
    with pytest.raises(ValueError, match="non-negative int"):
        AxisType("D", 3.0)


def test_neural_type_parses_axis_strings_and_prints_them():
    t = NeuralType(("B", "T", AxisType("D", 8)), EmbeddedTextType(), optional=True)
    assert t.axes == (AxisType("B"), AxisType("T"), AxisType("D", 8))
    assert str(t) == "(B, T, D:8) EmbeddedTextType (optional)"
    assert str(NeuralType()) == "() VoidType"
    assert NeuralType("B", LossType()).axes == (AxisType("B"),)


def test_neural_type_equality_includes_elements_and_optional():
    assert nt((B, T)) == nt((B, T))
    assert nt((B, T)) != nt((B, T), MaskType())
    assert nt((B, T)) != nt((B, T), optional=True)
    assert nt((B, T)) != nt((T, B))
    assert hash(nt((B, T))) == hash(nt((B, T)))


def test_neural_type_rejects_element_class_instead_of_instance():
    with pytest.raises(TypeError, match=r"ChannelType instead of ChannelType\(\)"):
        NeuralType((B, T), ChannelType)
    with pytest.raises(TypeError, match="AxisType or a string"):
        NeuralType((B, 3))


def test_compare_with_a_non_type_is_a_type_error():
    with pytest.raises(TypeError, match="got str"):
        nt((B,)).compare("B")


# ---- element types ----------------------------------------------------------------------------
def test_result_values_are_nemos():
    assert {r.name: r.value for r in R} == {
        "SAME": 0,
        "LESS": 1,
        "GREATER": 2,
        "DIM_INCOMPATIBLE": 3,
        "TRANSPOSE_SAME": 4,
        "CONTAINER_SIZE_MISMATCH": 5,
        "INCOMPATIBLE": 6,
        "SAME_TYPE_INCOMPATIBLE_PARAMS": 7,
    }


def test_only_same_and_greater_are_accepted_by_wiring():
    assert {r for r in R if r.accepts} == {R.SAME, R.GREATER}


@pytest.mark.parametrize(
    "first, second, expected",
    [
        (ChannelType(), ChannelType(), R.SAME),
        (EmbeddedTextType(), ChannelType(), R.LESS),  # first is the more specific
        (ChannelType(), EmbeddedTextType(), R.GREATER),  # first accepts the more specific
        (LabelsType(), PredictionsType(), R.GREATER),
        (PredictionsType(), LabelsType(), R.LESS),
        (ElementType(), LogitsType(), R.GREATER),
        (LogitsType(), LabelsType(), R.INCOMPATIBLE),
        (LogitsType(), LogprobsType(), R.INCOMPATIBLE),
        (MaskType(), ChannelType(), R.INCOMPATIBLE),
        (LengthsType(), IndexType(), R.INCOMPATIBLE),
        (StringType(), ChannelType(), R.INCOMPATIBLE),
        (LabelsType(num_classes=3), LabelsType(num_classes=5), R.SAME_TYPE_INCOMPATIBLE_PARAMS),
        (LabelsType(num_classes=3), LabelsType(num_classes=3), R.SAME),
        (VoidType(), LogitsType(), R.SAME),
    ],
)
def test_element_type_compare(first, second, expected):
    assert first.compare(second) is expected


def test_element_types_print_their_parameters():
    assert str(LabelsType(num_classes=3)) == "LabelsType(num_classes=3)"
    assert LabelsType(num_classes=3) == LabelsType(num_classes=3) != LabelsType()
    assert LabelsType(num_classes=3).type_parameters == {"num_classes": 3}


# ---- the comparison table ---------------------------------------------------------------------
# (expected port type, given tensor type, result): each result and the situation it describes.
class SpectrogramLike(ChannelType):
    """Stands in for NeMo's SpectrogramType in the examples NeMo documents."""


FIXED_BTD = nt((AxisType(B, 64), AxisType(T, 10), AxisType(D, 128)), SpectrogramLike())

TABLE = [
    # SAME: identical, or expected only leaves a size free / uses an 'any' axis.
    (nt((B, T, D)), nt((B, T, D)), R.SAME),
    (nt((B, D)), nt((B, AxisType(D, 32))), R.SAME),
    (nt((B, "any")), nt((B, T)), R.SAME),
    (nt((B, "any", "any"), SpectrogramLike()), nt((B, T, "C"), SpectrogramLike()), R.SAME),
    (NeuralType(None, LossType()), NeuralType(None, LossType()), R.SAME),
    (nt((B, "C", T)), nt((B, D, T)), R.SAME),  # Channel is Dimension
    (nt(("N", D)), nt((B, D)), R.SAME),  # N is Batch
    (nt((B, T, "C"), SpectrogramLike()), FIXED_BTD, R.SAME),  # free sizes take fixed ones
    # LESS: the expected elements are a subtype of the given ones (a port too specific to accept them).
    (nt((B, T, D), EmbeddedTextType()), nt((B, T, D)), R.LESS),
    # GREATER: the expected elements are a supertype of the given ones: accepted.
    (nt((B, T, D)), nt((B, T, D), EmbeddedTextType()), R.GREATER),
    (nt((B,), LabelsType()), nt((B,), PredictionsType()), R.GREATER),
    # DIM_INCOMPATIBLE: same elements and the same kinds, but a fixed size differs.
    (nt((B, AxisType(D, 32))), nt((B, AxisType(D, 64))), R.DIM_INCOMPATIBLE),
    (nt((B, AxisType(D, 32))), nt((B, D)), R.DIM_INCOMPATIBLE),  # a free size may be anything
    (FIXED_BTD, nt((B, T, "C"), SpectrogramLike()), R.DIM_INCOMPATIBLE),
    (nt((AxisType(T, 5), B)), nt((B, AxisType(T, 7))), R.DIM_INCOMPATIBLE),  # no order fixes a size
    # TRANSPOSE_SAME: same elements, same kinds and sizes in another order, or lists vs tensors.
    (nt((B, T, D)), nt((T, B, D)), R.TRANSPOSE_SAME),
    (nt((B, T, D), EmbeddedTextType()), nt((D, T, B), EmbeddedTextType()), R.TRANSPOSE_SAME),
    (nt((AxisType(B, is_list=True), T)), nt((B, T)), R.TRANSPOSE_SAME),  # list vs tensor
    (nt((B, T)), nt((AxisType(B, is_list=True), T)), R.TRANSPOSE_SAME),
    # ... also when only a non-greedy matching finds the order ('any' or a free size must not grab
    # the axis a stricter one needs):
    (nt(("any", T)), nt((T, B)), R.TRANSPOSE_SAME),
    (nt((T, AxisType(T, 5), B)), nt((B, AxisType(T, 5), AxisType(T, 7))), R.TRANSPOSE_SAME),
    # CONTAINER_SIZE_MISMATCH: same elements and axes, but a list axis holds another number of tensors.
    (
        nt((AxisType(B, 2, is_list=True), T)),
        nt((AxisType(B, 3, is_list=True), T)),
        R.CONTAINER_SIZE_MISMATCH,
    ),
    # INCOMPATIBLE: unrelated elements, whatever the axes ...
    (nt((B,), LogitsType()), nt((B,), LabelsType()), R.INCOMPATIBLE),
    (nt((B, T), LogitsType()), nt((T,), LabelsType()), R.INCOMPATIBLE),
    (nt((B, T)), NeuralType(), R.INCOMPATIBLE),  # a typed port does not take a Void tensor
    # ... another rank, another set of kinds, or a scalar against a tensor, whatever the elements ...
    (nt((B, T, D)), nt((B, T)), R.INCOMPATIBLE),
    (nt((B, T, "C"), VoidType()), nt((B, T), SpectrogramLike()), R.INCOMPATIBLE),
    (nt((B, T)), nt((B, D)), R.INCOMPATIBLE),
    (nt((B, T, "C")), nt((B, "any", "any")), R.INCOMPATIBLE),  # 'any' in a tensor is no T
    (nt((B, T, "seq")), nt((B, T, D)), R.INCOMPATIBLE),
    (NeuralType(None, LossType()), NeuralType((B,), LossType()), R.INCOMPATIBLE),
    (NeuralType((B,), LossType()), NeuralType(None, LossType()), R.INCOMPATIBLE),
    # ... and axes that do not fit unless the elements are SAME: fixing the axes would not be enough.
    (nt((B, T, D)), nt((T, B, D), EmbeddedTextType()), R.INCOMPATIBLE),
    (nt((B, AxisType(D, 8))), nt((B, AxisType(D, 16)), EmbeddedTextType()), R.INCOMPATIBLE),
    (nt((B, T), LabelsType(num_classes=3)), nt((T, B), LabelsType(num_classes=5)), R.INCOMPATIBLE),
    # SAME_TYPE_INCOMPATIBLE_PARAMS: same element class, different type parameters.
    (
        nt((B,), LabelsType(num_classes=3)),
        nt((B,), LabelsType(num_classes=5)),
        R.SAME_TYPE_INCOMPATIBLE_PARAMS,
    ),
]


@pytest.mark.parametrize("expected, given, result", TABLE, ids=[f"{e}<-{g}" for e, g, _ in TABLE])
def test_neural_type_compare_table(expected, given, result):
    assert expected.compare(given) is result


def test_table_covers_every_result():
    assert {r for _, _, r in TABLE} == set(R)


@pytest.mark.parametrize(
    "given",
    [
        NeuralType(),
        NeuralType(None, LossType()),
        nt((B, T, D)),
        nt((T, B), LogitsType()),
        nt((AxisType(B, 4, is_list=True),), StringType()),
        nt((B,), LabelsType(num_classes=3)),
    ],
)
def test_axisless_void_accepts_anything(given):
    assert NeuralType().compare(given) is R.SAME
    assert NeuralType(None, VoidType()).compare(given).accepts


def test_void_with_axes_still_checks_the_axes():
    port = NeuralType((B, T), VoidType())
    assert port.compare(nt((B, T), LogitsType())) is R.SAME
    assert port.compare(nt((T, B), LogitsType())) is R.TRANSPOSE_SAME  # Void elements compare SAME
    assert port.compare(nt((B, T, D), LogitsType())) is R.INCOMPATIBLE


def test_nemos_documented_examples_compare_as_in_nemo():
    """The pairs NeMo 0.11's own tests use, in both directions, with nmod's element types."""
    btc = nt((B, T, "C"), SpectrogramLike())
    btc_void = nt((B, T, "C"), VoidType())
    assert (btc_void.compare(btc), btc.compare(btc_void)) == (R.SAME, R.INCOMPATIBLE)
    assert nt((B, T, "C"), VoidType()).compare(nt((T, B, "C"), VoidType())) is R.TRANSPOSE_SAME
    assert nt((T, B, "C"), VoidType()).compare(nt((B, T, "C"), VoidType())) is R.TRANSPOSE_SAME
    any_void, any_spec = nt((B, "any", "any"), VoidType()), nt((B, "Any", "Any"), SpectrogramLike())
    assert [any_void.compare(any_spec), any_void.compare(btc), any_spec.compare(btc)] == [R.SAME] * 3
    assert (btc.compare(any_spec), any_spec.compare(any_void)) == (R.INCOMPATIBLE, R.INCOMPATIBLE)
    listed = nt((AxisType(B, is_list=True), AxisType(T, is_list=True), AxisType(D, 32), AxisType(D, 128)))
    assert listed.compare(nt((B, T, AxisType(D, 32), AxisType(D, 128)))) is R.TRANSPOSE_SAME
    assert NeuralType(None).compare(NeuralType(None)) is R.SAME


@pytest.mark.parametrize(
    "expected, given, result",
    [
        ((B, D, D), (B, B, D), R.INCOMPATIBLE),  # NeMo: TRANSPOSE_SAME (kinds compared as a set)
        ((T, AxisType(T, 5), B), (B, AxisType(T, 5), AxisType(T, 7)), R.TRANSPOSE_SAME),  # NeMo: DIM_INC.
        ((B, T, D), (T, B, AxisType(D, 32)), R.TRANSPOSE_SAME),  # NeMo: DIM_INCOMPATIBLE
        ((B, "any"), (T, D), R.INCOMPATIBLE),  # NeMo: SAME ('any' resets an earlier mismatch)
        (("any", T), (T, B), R.TRANSPOSE_SAME),  # NeMo: INCOMPATIBLE (kind sets differ)
    ],
)
def test_where_nmod_follows_nemos_documented_rule_over_its_code(expected, given, result):
    """docs/neural_types.md lists these corners; keep the two in step."""
    assert nt(expected).compare(nt(given)) is result


def test_scalar_port_accepts_only_scalars_then_compares_elements():
    port = NeuralType(None, LabelsType())
    assert port.compare(NeuralType(None, PredictionsType())) is R.GREATER
    assert port.compare(NeuralType(None, LogitsType())) is R.INCOMPATIBLE
    assert port.compare(nt((B,), LabelsType())) is R.INCOMPATIBLE


def test_optional_does_not_change_the_comparison():
    assert nt((B, T), optional=True).compare(nt((B, T))) is R.SAME


def test_the_types_layer_imports_no_torch():
    code = "import sys, nmod.types, nmod.core; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_reference_examples_hold():
    """docs/neural_types.md shows each result by example; its code blocks must stay true."""
    doc = Path(__file__).resolve().parents[2] / "docs" / "neural_types.md"
    text = doc.read_text()
    blocks = re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, str(doc), "exec"), {})
    # The table lists every result with its value, and which ones wiring accepts.
    for r in R:
        row = re.search(rf"^\| `{r.name}` \| {r.value} \|.*\| (accepted|refused) \|$", text, flags=re.M)
        assert row, f"{r.name} missing from the table"
        assert (row.group(1) == "accepted") == r.accepts
