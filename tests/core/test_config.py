"""Module configs in YAML: round trips and every kind of bad file."""
from pathlib import Path

import pytest
import torch
from ruamel.yaml import YAML

import nmod
from nmod import (
    ConfigClassMismatchError,
    ConfigError,
    ConfigExportError,
    ConfigFieldError,
    ConfigParseError,
    NeuralModule,
)
from nmod.backends.pytorch import TrainableNM
from nmod.testing import ToyClassifier, ToyDataLayer, ToyEncoder


class Configurable(TrainableNM):
    """Takes any init arguments, so the export check can be fed every kind of value."""

    def __init__(self, value=None, name=None):
        super().__init__(name=name)


def _load(path):
    return YAML(typ="safe").load(Path(path).read_text())


# ---- round trips ------------------------------------------------------------------------------
def test_export_writes_header_class_path_and_init_params(tmp_path):
    ToyClassifier(hidden_size=16, name="cls").export_to_config(tmp_path / "sub" / "cls.yaml")
    assert _load(tmp_path / "sub" / "cls.yaml") == {
        "header": {"nmod_version": nmod.__version__, "full_spec": "nmod.testing.ToyClassifier"},
        "init_params": {"hidden_size": 16, "num_classes": 3},
    }
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["cls.yaml"]  # no temporary file left


def test_import_rebuilds_the_same_class_and_params(tmp_path):
    original = ToyDataLayer(num_examples=6, shuffle=True, name="data")
    original.export_to_config(tmp_path / "data.yaml")
    for importer in (ToyDataLayer, NeuralModule, nmod.backends.pytorch.DataLayerNM):
        copy = importer.import_from_config(tmp_path / "data.yaml")
        assert type(copy) is ToyDataLayer
        assert copy.init_params == original.init_params
        assert copy.name != original.name  # a fresh default name unless one is given
        assert len(copy) == 6 and copy.shuffle is True
        assert torch.equal(copy.dataset.tensors[0], original.dataset.tensors[0])  # same seed, same data


def test_import_with_overwritten_params_and_a_name(tmp_path):
    ToyEncoder(hidden_size=8, name="enc").export_to_config(tmp_path / "enc.yaml")
    copy = ToyEncoder.import_from_config(str(tmp_path / "enc.yaml"), overwrite_params={"hidden_size": 4}, name="small")
    assert copy.name == "small"
    assert copy.init_params == {"hidden_size": 4}
    assert copy.dense.weight.shape == (4, 4)


def test_tuples_become_lists_paths_become_strings_and_nesting_is_kept(tmp_path):
    value = {"sizes": (1, 2), "file": Path("/data/vocab.txt"), "deep": [{"a": None, "b": 1.5, "c": True}]}
    Configurable(value, name="c").export_to_config(tmp_path / "c.yaml")
    assert _load(tmp_path / "c.yaml")["init_params"]["value"] == {
        "sizes": [1, 2],
        "file": "/data/vocab.txt",
        "deep": [{"a": None, "b": 1.5, "c": True}],
    }
    copy = Configurable.import_from_config(tmp_path / "c.yaml")
    assert copy.init_params["value"]["sizes"] == [1, 2]


# ---- export errors ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, where, found",
    [
        (object(), "value'", "builtins.object"),
        (torch.zeros(2), "value'", "torch.Tensor"),
        ([1, torch.nn.Linear(1, 1)], r"value'\[1\]", "torch.nn.modules.linear.Linear"),
        ({"inner": {"fn": print}}, r"value'.inner.fn", "builtins.builtin_function_or_method"),
    ],
)
def test_a_non_primitive_init_param_is_refused_at_export(tmp_path, value, where, found):
    module = Configurable(value, name="holder")
    with pytest.raises(ConfigExportError, match=rf"Configurable 'holder' init param '{where} is a {found}; only None"):
        module.export_to_config(tmp_path / "c.yaml")
    assert not (tmp_path / "c.yaml").exists()


def test_a_non_string_dict_key_is_refused_at_export(tmp_path):
    with pytest.raises(ConfigExportError, match="dict keys must be strings, found 3"):
        Configurable({3: "x"}, name="holder").export_to_config(tmp_path / "c.yaml")


# ---- import errors ----------------------------------------------------------------------------
def test_a_config_of_another_class_is_refused(tmp_path):
    ToyClassifier(name="cls").export_to_config(tmp_path / "cls.yaml")
    with pytest.raises(ConfigClassMismatchError) as info:
        ToyEncoder.import_from_config(tmp_path / "cls.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'cls.yaml'} describes a nmod.testing.ToyClassifier, "
        "not a nmod.testing.ToyEncoder (or a subclass of it)"
    )
    assert isinstance(info.value, ConfigError)


def test_yaml_that_does_not_parse_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("header:\n  full_spec: nmod.testing.ToyEncoder\ninit_params: {hidden_size: 8\nname: x\n")
    with pytest.raises(ConfigParseError, match=rf"^{path}:4:\d+: not valid YAML: "):
        NeuralModule.import_from_config(path)
    path.write_text("header:\n\tfull_spec: x\n")  # a tab where YAML wants spaces
    with pytest.raises(ConfigParseError, match=rf"^{path}:2:\d+: not valid YAML"):
        NeuralModule.import_from_config(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("- just\n- a list\n", "expected a mapping at the top level, found list"),
        ("", "expected a mapping at the top level, found NoneType"),
        ("init_params: {}\n", "missing field 'header'"),
        ("header: nmod.testing.ToyEncoder\n", "field 'header' must be a dict, found str"),
        ("header: {nmod_version: 0.1.0}\n", "header: missing field 'full_spec'"),
        ("header: {full_spec: 3}\n", "header: field 'full_spec' must be a str, found int"),
        ("header: {full_spec: nmod.testing.ToyEncoder}\ninit_params: [8]\n", "field 'init_params' must be a dict, found list"),
        ("header: {full_spec: nmod.testing.NoSuchModule}\n", "cannot import class 'nmod.testing.NoSuchModule'"),
        ("header: {full_spec: no_such_package.Module}\n", "cannot import class 'no_such_package.Module'"),
        ("header: {full_spec: ToyEncoder}\n", "cannot import class 'ToyEncoder'"),
        ("header: {full_spec: collections.OrderedDict}\n", "'collections.OrderedDict' is not a NeuralModule"),
        (
            "header: {full_spec: nmod.testing.ToyEncoder}\ninit_params: {hidden_sise: 8}\n",
            "init_params do not fit nmod.testing.ToyEncoder: .*unexpected keyword argument 'hidden_sise'",
        ),
    ],
)
def test_config_files_lacking_fields_are_refused(tmp_path, text, message):
    path = tmp_path / "enc.yaml"
    path.write_text(text)
    with pytest.raises(ConfigFieldError, match=rf"^{path}.*{message}"):
        NeuralModule.import_from_config(path)


def test_a_config_without_init_params_uses_the_defaults(tmp_path):
    path = tmp_path / "enc.yaml"
    path.write_text("header: {full_spec: nmod.testing.ToyEncoder}\n")
    assert NeuralModule.import_from_config(path).init_params == {"hidden_size": 8}


def test_a_missing_config_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Config file .*nope.yaml does not exist"):
        NeuralModule.import_from_config(tmp_path / "nope.yaml")


def test_export_overwrites_atomically(tmp_path):
    path = tmp_path / "enc.yaml"
    ToyEncoder(hidden_size=8, name="a").export_to_config(path)
    ToyEncoder(hidden_size=4, name="b").export_to_config(path)
    assert _load(path)["init_params"] == {"hidden_size": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["enc.yaml"]


class Outer:
    class NestedModule(TrainableNM):
        """class_path writes nested classes as 'module.Outer.NestedModule'; import must follow."""

        def __init__(self, size: int = 2, name=None):
            super().__init__(name=name)


def test_a_nested_class_round_trips(tmp_path):
    Outer.NestedModule(size=3, name="nested").export_to_config(tmp_path / "n.yaml")
    assert _load(tmp_path / "n.yaml")["header"]["full_spec"].endswith(".Outer.NestedModule")
    copy = NeuralModule.import_from_config(tmp_path / "n.yaml")
    assert type(copy) is Outer.NestedModule and copy.init_params == {"size": 3}
