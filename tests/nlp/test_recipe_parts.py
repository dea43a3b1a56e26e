"""The recipe parts every task shares: flags, demo defaults, "not set" numbers, the saved arguments."""
import argparse
import importlib.util
from pathlib import Path

import pytest

from nmod.core.config import read_yaml
from nmod.core.errors import ConfigError
from nmod_nlp import recipe

ROOT = Path(__file__).resolve().parents[2]


def load_squad_recipe():
    path = ROOT / "examples" / "nlp" / "question_answering" / "question_answering_squad.py"
    spec = importlib.util.spec_from_file_location("question_answering_squad", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parser_with_all_groups() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    recipe.add_encoder_args(p)
    recipe.add_training_args(p)
    recipe.add_output_args(p, work_dir="work")
    return p


@pytest.mark.parametrize("text, expected", [("-1", None), ("none", None), ("3", 3), ("250", 250)])
def test_optional_number_reads_nemo_minus_one_as_not_set(text, expected):
    assert recipe.optional_number(int)(text) == expected


@pytest.mark.parametrize("text", ["0", "-2", "x"])
def test_optional_number_rejects_other_values_with_the_rule(text):
    with pytest.raises(argparse.ArgumentTypeError, match="positive int or -1"):
        recipe.optional_number(int)(text)


def test_nemo_spellings_of_shared_flags():
    args = parser_with_all_groups().parse_args(
        ["--optimizer_kind", "adam", "--loss_step_freq", "7", "--max_steps", "-1", "--save_step_freq", "-1",
         "--grad_norm_clip", "-1", "--no_shuffle_data"])
    assert (args.optimizer, args.train_step_freq) == ("adam", 7)
    assert args.max_steps is None and args.save_step_freq is None and args.grad_norm_clip is None
    assert args.shuffle_data is False
    assert recipe.optimization_params(args) == {"lr": 3e-5, "weight_decay": 0.0, "num_epochs": 2}


def test_optimization_params_uses_max_steps_and_clip_when_set():
    args = parser_with_all_groups().parse_args(["--max_steps", "5", "--grad_norm_clip", "1.5", "--lr", "1e-4"])
    assert recipe.optimization_params(args) == {"lr": 1e-4, "weight_decay": 0.0, "max_steps": 5,
                                                "grad_norm_clip": 1.5}


def test_demo_defaults_never_override_a_flag_the_user_passed():
    p = parser_with_all_groups()
    args = recipe.parse_args_with_demo(p, ["--lr", "1e-5"], lambda a: {"lr": 2e-4, "num_epochs": 3})
    assert args.lr == 1e-5 and args.num_epochs == 3


def test_squad_demo_keeps_the_users_lr_and_fills_the_rest():
    squad = load_squad_recipe()
    args = squad.parse_args(["--lr", "1e-5"])
    assert args.lr == 1e-5  # the user's value, not the demo's 2e-4
    assert args.pretrained_model_name == recipe.DEMO_MODEL
    assert Path(args.train_file).name == "train-v1.1.json" and args.num_epochs == 3 and args.max_seq_length == 192


def test_squad_without_demo_keeps_nemo_defaults(tmp_path):
    squad = load_squad_recipe()
    data = tmp_path / "train.json"
    data.write_text("{}")
    args = squad.parse_args(["--train_file", str(data), "--eval_file", str(data)])
    assert args.pretrained_model_name == recipe.DEMO_MODEL  # no encoder named: the demo model
    assert (args.lr, args.num_epochs, args.max_seq_length, args.batch_size) == (3e-5, 2, 384, 8)


def test_resolved_arguments_are_saved_and_logged_once(tmp_path, caplog):
    args = parser_with_all_groups().parse_args(["--lr", "1e-4", "--max_steps", "-1"])
    with caplog.at_level("INFO", logger="nmod"):
        path = recipe.save_resolved_args(args, tmp_path)
    saved = read_yaml(path)["arguments"]
    assert saved == vars(args)
    assert saved["max_steps"] is None and saved["lr"] == 1e-4
    assert sum("arguments:" in r.getMessage() for r in caplog.records) == 1


def test_infer_queries_are_repeatable_and_read_from_a_file(tmp_path):
    p = recipe.infer_parser("doc", work_dir="work_dir/x", queries="texts", input_file="a file")
    args = p.parse_args(["--queries", "a b", "c", "--query", "d"])
    assert recipe.read_queries(args, ["default"]) == ["a b", "c", "d"]
    assert recipe.read_queries(p.parse_args([]), ["default"]) == ["default"]
    lines = tmp_path / "q.txt"
    lines.write_text("first\n\n  \nsecond\n", encoding="utf-8")
    assert recipe.read_queries(p.parse_args(["--input_file", str(lines)]), []) == ["first", "second"]
    with pytest.raises(ConfigError, match="not both"):
        recipe.read_queries(p.parse_args(["--queries", "a", "--input_file", str(lines)]), [])
    assert recipe.infer_model_dir(p.parse_args([])) == Path("work_dir/x/model")


def test_check_data_args_names_the_missing_flags_and_files(tmp_path, capsys):
    p = argparse.ArgumentParser()
    p.add_argument("--data_dir")
    p.add_argument("--task_name")
    recipe.add_run_args(p, work_dir="work")
    (tmp_path / "train.tsv").write_text("x\n")
    with pytest.raises(SystemExit):
        recipe.check_data_args(p, p.parse_args([]), [], required=("data_dir", "task_name"))
    assert "--data_dir and --task_name are required" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.check_data_args(p, p.parse_args(["--data_dir", str(tmp_path), "--mode", "eval"]), ["dev.tsv"])
    assert "--mode eval needs --checkpoint_dir" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        recipe.check_data_args(p, p.parse_args(["--data_dir", str(tmp_path)]),
                               recipe.mode_splits("train_eval", "train.tsv", "dev.tsv"))
    assert "no dev.tsv in it" in capsys.readouterr().err
    recipe.check_data_args(p, p.parse_args(["--data_dir", str(tmp_path), "--mode", "train"]),
                           recipe.mode_splits("train", "train.tsv", "dev.tsv"))
