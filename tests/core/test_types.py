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
        ("W", AxisKind.Width),
        ("H", AxisKind.Height),
        ("any", AxisKind.Any),
        ("Batch", AxisKind.Batch),
        (" t ", AxisKind.Time),
    ],
)
def test_axis_kind_from_str(label, kind):
    assert AxisKind.from_str(label) is kind


def test_axis_kind_unknown_label_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown axis kind 'Q'.*'B', 'T', 'D', 'C', 'W', 'H', 'any'"):
        AxisKind.from_str("Q")


def test_axis_type_fields_equality_and_repr():
    axis = AxisType("D", 32)
    assert (axis.kind, axis.size, axis.is_list) == (AxisKind.Dimension, 32, False)
    assert axis == AxisType(AxisKind.Dimension, 32)
    assert axis != AxisType("D") and axis != AxisType("D", 32, is_list=True)
    assert len({axis, AxisType("D", 32), AxisType("D")}) == 2
    assert repr(axis) == "D:32"
    assert repr(AxisType("B", 2, is_list=True)) == "list[B:2]"


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
TABLE = [
    # SAME: identical, or expected only leaves a size free / uses an 'any' axis.
    (nt((B, T, D)), nt((B, T, D)), R.SAME),
    (nt((B, D)), nt((B, AxisType(D, 32))), R.SAME),
    (nt((B, "any")), nt((B, T)), R.SAME),
    (NeuralType(None, LossType()), NeuralType(None, LossType()), R.SAME),
    # LESS: the expected elements are a subtype of the given ones (a port too specific to accept them).
    (nt((B, T, D), EmbeddedTextType()), nt((B, T, D)), R.LESS),
    # GREATER: the expected elements are a supertype of the given ones: accepted.
    (nt((B, T, D)), nt((B, T, D), EmbeddedTextType()), R.GREATER),
    (nt((B,), LabelsType()), nt((B,), PredictionsType()), R.GREATER),
    # DIM_INCOMPATIBLE: same elements, but rank, axis kinds or fixed sizes disagree.
    (nt((B, T, D)), nt((B, T)), R.DIM_INCOMPATIBLE),
    (nt((B, AxisType(D, 32))), nt((B, AxisType(D, 64))), R.DIM_INCOMPATIBLE),
    (nt((B, AxisType(D, 32))), nt((B, D)), R.DIM_INCOMPATIBLE),  # a free size may be anything
    (nt((B, T)), nt((B, D)), R.DIM_INCOMPATIBLE),
    (NeuralType(None, LossType()), NeuralType((B,), LossType()), R.DIM_INCOMPATIBLE),
    (nt((AxisType(B, is_list=True), T)), nt((B, T)), R.DIM_INCOMPATIBLE),
    # TRANSPOSE_SAME: same elements and axes, in another order.
    (nt((B, T, D)), nt((T, B, D)), R.TRANSPOSE_SAME),
    (nt((B, T, D), EmbeddedTextType()), nt((D, T, B), EmbeddedTextType()), R.TRANSPOSE_SAME),
    (nt((B, T, D)), nt((T, B, D), EmbeddedTextType()), R.TRANSPOSE_SAME),  # axes outrank GREATER
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
    # INCOMPATIBLE: unrelated elements; decided before the axes are looked at.
    (nt((B,), LogitsType()), nt((B,), LabelsType()), R.INCOMPATIBLE),
    (nt((B, T), LogitsType()), nt((T,), LabelsType()), R.INCOMPATIBLE),
    (nt((B, T)), NeuralType(), R.INCOMPATIBLE),  # a typed port does not take a Void tensor
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
    assert port.compare(nt((B, T, D), LogitsType())) is R.DIM_INCOMPATIBLE


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
