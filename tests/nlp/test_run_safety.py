"""A run never destroys an earlier one: each recipe, given each kind of bad input, stops with one line
(exit 2) naming the flag or file, writes nothing, and leaves a finished run's folder byte for byte as it
was; resume happens only when asked for; the model folder alone serves every infer script."""
import hashlib
import json
import os
import runpy
import shutil
import stat
from pathlib import Path

import pytest

from nmod_nlp import recipe
from nmod_nlp.modules.encoders import MegatronBERT
from nmod_nlp.testing import save_megatron_checkpoint
from recipe_runner import ROOT, VOCAB

EXAMPLES = ROOT / "examples" / "nlp"
SAMPLES = ROOT / "collections" / "nmod_nlp" / "data"

# recipe -> (script, its data flags given a copy of its sample in `data`, a file its --data_dir must hold,
#            the infer script, infer flags)
RECIPES = {
    "squad": ("question_answering/question_answering_squad.py",
              lambda d: ["--train_file", d / "train-v1.1.json", "--eval_file", d / "dev-v1.1.json",
                         "--max_seq_length", "96", "--doc_stride", "48"], None,
              "question_answering/question_answering_infer.py",
              ["--question", "Who wrote it?", "--context", "It was written by Ada in 1843."]),
    "glue": ("glue_benchmark/glue_benchmark_with_bert.py", lambda d: ["--data_dir", d / "MRPC", "--task_name", "mrpc"],
             "MRPC/dev.tsv", "glue_benchmark/glue_infer.py", ["--queries", "A cat sat.\tA cat was sitting."]),
    "text_classification": ("text_classification/text_classification_with_bert.py", lambda d: ["--data_dir", d],
                            "dev.tsv", "text_classification/text_classification_infer.py",
                            ["--queries", "it broke after a week"]),
    "ner": ("token_classification/token_classification.py", lambda d: ["--data_dir", d], "labels_dev.txt",
            "token_classification/token_classification_infer.py", ["--queries", "anna lives in paris"]),
    "punctuation": ("punctuation_capitalization/punctuation_capitalization.py", lambda d: ["--data_dir", d],
                    "labels_train.txt", "punctuation_capitalization/punctuation_capitalization_infer.py",
                    ["--queries", "how are you"]),
    "intent_slot": ("intent_detection_slot_tagging/joint_intent_slot_with_bert.py", lambda d: ["--data_dir", d],
                    "dict.slots.csv", "intent_detection_slot_tagging/joint_intent_slot_infer.py",
                    ["--queries", "play adele"]),
}
SAMPLE_DIRS = {"squad": "squad/samples", "glue": "glue/samples", "text_classification": "text_classification/samples",
               "ner": "token_classification/samples", "punctuation": "punctuation_capitalization/samples",
               "intent_slot": "intent_slot/samples"}


def run_script(script: str, argv: list, capsys) -> tuple[int, str, str]:
    """A recipe or infer script in this process, as `python script argv` runs it: (exit status, stdout, stderr)."""
    argv = [str(a) for a in argv]
    main = runpy.run_path(str(EXAMPLES / script))["main"]
    try:
        recipe.run(lambda: main(argv), argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny Megatron checkpoint and config (copies: the infer test deletes them), and a 500-token vocabulary."""
    folder = tmp_path_factory.mktemp("encoder")
    (folder / "config.json").write_text(json.dumps({"hidden-size": 32, "num-attention-heads": 2, "num-layers": 2,
                                                    "max-seq-length": 128}))
    model = MegatronBERT(config_file=str(folder / "config.json"), vocab_file=str(VOCAB), add_pooler=True)
    save_megatron_checkpoint(model, folder / "save", num_attention_heads=2,
                             args={"tokenizer_type": "BertWordPieceCase"})
    shutil.copy(VOCAB, folder / "vocab.txt")
    small = folder / "small_vocab.txt"
    small.write_text("".join(VOCAB.read_text().splitlines(keepends=True)[:500]))
    return {"config": folder / "config.json", "checkpoint": next((folder / "save").rglob("model_optim_rng.pt")),
            "vocab": folder / "vocab.txt", "small_vocab": small, "folder": folder}


def flags(files, vocab=None) -> list:
    return ["--pretrained_model_name", "megatron-uncased", "--bert_config", files["config"], "--bert_checkpoint",
            files["checkpoint"], "--vocab_file", vocab or files["vocab"], "--do_lower_case"]


@pytest.fixture(scope="module")
def runs(files, tmp_path_factory):
    """Each recipe trained for one step into its own work_dir, as a user's earlier, good run."""
    done = {}
    for name, (script, data_flags, *_rest) in RECIPES.items():
        root = tmp_path_factory.mktemp(name)
        data = shutil.copytree(SAMPLES / SAMPLE_DIRS[name], root / "data",
                               ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))
        argv = [*data_flags(data), *flags(files), "--max_steps", "1", "--batch_size", "4", "--train_step_freq", "1",
                "--work_dir", root / "run"]
        runpy.run_path(str(EXAMPLES / script))["main"]([str(a) for a in argv])
        done[name] = {"data": data, "work": root / "run", "root": root, "argv": argv}
    return done


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_same_command_twice_and_bad_inputs_leave_the_run_intact(name, runs, files, capsys):
    script, data_flags, needed, *_ = RECIPES[name]
    run = runs[name]
    before = snapshot(run["work"])
    assert {"args.yaml", "model/model.yaml", "nmod.log"} <= set(before) and any(k.startswith("tensorboard") for k in before)

    # the same command again: refused, naming the folder and --resume
    code, _, err = run_script(script, run["argv"], capsys)
    assert code == 2 and "already holds a finished" in err and "--resume" in err and "Traceback" not in err

    fresh = run["root"] / "fresh"
    data = run["data"]
    cases = [(["--batch_size", "0"], "--batch_size"), (["--batch_size", "-3"], "--batch_size"),
             (["--bert_checkpoint", files["vocab"]], "is not a PyTorch checkpoint")]
    if needed:
        broken = shutil.copytree(data, run["root"] / "broken", dirs_exist_ok=True)
        (broken / needed).unlink()
        cases.append((data_flags(broken), Path(needed).name))
    for extra, message in cases:
        argv = [*run["argv"][:-2], *extra, "--work_dir", fresh]
        code, _, err = run_script(script, argv, capsys)
        assert code == 2, (extra, err[-2000:])
        assert message in err and "Traceback" not in err, (extra, err[-2000:])
        assert not fresh.exists(), f"{extra}: wrote {list(fresh.rglob('*'))}"
    assert snapshot(run["work"]) == before


def test_glue_bad_encoder_and_checkpoint_inputs(runs, files, capsys, tmp_path):
    script = RECIPES["glue"][0]
    base = [*RECIPES["glue"][1](runs["glue"]["data"]), "--max_steps", "1", "--work_dir", tmp_path / "new"]
    nemo = tmp_path / "nemo_ckpt"
    nemo.mkdir()
    (nemo / "BERT-STEP-100.pt").write_bytes(b"x")
    random_bytes = tmp_path / "random.pt"
    random_bytes.write_bytes(os.urandom(4096).replace(b"\x80", b"\x00"))
    cases = [
        (flags(files, files["small_vocab"]), ["small_vocab.txt has 500 tokens", "30592 rows"]),
        ([*flags(files)[:5], random_bytes, *flags(files)[6:]], ["random.pt is not a PyTorch checkpoint"]),
        ([*flags(files), "--checkpoint_dir", nemo], ["NeMo 0.11 checkpoints", "BERT-STEP-100.pt"]),
        ([*flags(files), "--checkpoint_dir", tmp_path], ["holds no checkpoint nmod can read"]),
        ([*flags(files), "--max_seq_length", "5"], ["--max_seq_length", "must be at least 8"]),
        ([*flags(files), "--resume"], ["holds no run to resume"]),
    ]
    for extra, messages in cases:
        code, _, err = run_script(script, [*base, *extra], capsys)
        assert code == 2 and all(m in err for m in messages), (extra, err[-1500:])
        assert not (tmp_path / "new").exists()
    # the same checkpoint folder in --mode eval is the same error
    code, _, err = run_script(script, [*base, *flags(files), "--mode", "eval", "--checkpoint_dir", tmp_path], capsys)
    assert code == 2 and "holds no checkpoint nmod can read" in err


def test_another_task_in_a_runs_folder_is_refused_even_with_resume(runs, files, capsys):
    run = runs["glue"]
    before = snapshot(run["work"])
    sst2 = ["--data_dir", SAMPLES / "glue" / "samples" / "SST-2", "--task_name", "sst-2", *flags(files),
            "--max_steps", "1", "--work_dir", run["work"]]
    for extra in ([], ["--resume"]):
        code, _, err = run_script(RECIPES["glue"][0], [*sst2, *extra], capsys)
        assert code == 2 and "glue:mrpc run" in err and "not a glue:sst-2 run" in err, err
    assert snapshot(run["work"]) == before


def test_squad_max_seq_length_too_small_for_the_question(files, capsys, tmp_path):
    data = SAMPLES / "squad" / "samples"
    code, _, err = run_script(RECIPES["squad"][0], ["--train_file", data / "train-v1.1.json", "--eval_file",
                                                    data / "dev-v1.1.json", "--max_seq_length", "5",
                                                    "--work_dir", tmp_path / "w", *flags(files)], capsys)
    assert code == 2 and "--max_seq_length 5 leaves no room for the context" in err
    assert not (tmp_path / "w").exists()


def test_a_vocab_without_special_tokens_is_one_line(files, capsys, tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("hello\nworld\n")
    code, _, err = run_script(RECIPES["ner"][0], ["--data_dir", SAMPLES / "token_classification" / "samples",
                                                  "--work_dir", tmp_path / "w", "--pretrained_model_name",
                                                  str(Path(VOCAB).parent), "--vocab_file", vocab], capsys)
    assert code == 2 and "lacks the special token" in err and str(vocab) in err
    assert not (tmp_path / "w").exists()


def test_resume_is_explicit_and_continues_the_run(runs, files, capsys, caplog):
    run = runs["text_classification"]
    argv = [*run["argv"][:-2], "--max_steps", "2", "--work_dir", run["work"], "--resume"]
    code, out, err = run_script(RECIPES["text_classification"][0], argv, capsys)
    assert code == 0, err
    assert "Resumed from" in caplog.text and "step-00000001" in caplog.text
    assert "before training" not in out and "after training" in out  # a resumed run has no "before"
    assert sorted(p.name for p in (run["work"] / "checkpoints").iterdir()) == ["step-00000001", "step-00000002"]
    # and the head it resumed with is the run's: another one is refused before anything is written
    before = snapshot(run["work"])
    code, _, err = run_script(RECIPES["text_classification"][0], [*argv, "--head", "mlp"], capsys)
    assert code == 2 and "trained with other modules" in err and "--head 'pooler' there, 'mlp' now" in err
    assert snapshot(run["work"]) == before


def test_what_a_run_writes_is_shareable_and_logged(runs, caplog):
    """Files keep the permissions a plain write gives them; TensorBoard, the loaded weights and the
    lower-casing disagreement are in the run's log."""
    work = runs["glue"]["work"]
    umask = os.umask(0o022)
    os.umask(umask)
    for path in [work / "args.yaml", work / "model", work / "model" / "encoder.safetensors",
                 *(work / "checkpoints").rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666) & ~umask
        assert mode == expected, f"{path}: {oct(mode)}, expected {oct(expected)}"
    log = (work / "nmod.log").read_text()
    assert "loaded " in log and "Megatron-LM model_optim_rng.pt" in log and "tensors into MegatronBertModel" in log
    assert "was trained cased" in log and "--do_lower_case" in log  # the checkpoint says BertWordPieceCase
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(work / "tensorboard"))
    events.Reload()
    assert {"loss", "lr", "eval/acc", "eval/f1"} <= set(events.Tags()["scalars"])


def test_no_tensorboard_and_checkpoints_to_keep(files, capsys, tmp_path):
    data = SAMPLES / "text_classification" / "samples"
    shutil.copytree(data, tmp_path / "data", ignore=shutil.ignore_patterns("*.py", "*.cache.pt"))
    code, _, err = run_script(RECIPES["text_classification"][0], [
        "--data_dir", tmp_path / "data", *flags(files), "--max_steps", "3", "--save_step_freq", "1",
        "--checkpoints_to_keep", "1", "--no_tensorboard", "--mode", "train", "--work_dir", tmp_path / "w"], capsys)
    assert code == 0, err
    assert not (tmp_path / "w" / "tensorboard").exists()
    assert [p.name for p in (tmp_path / "w" / "checkpoints").iterdir()] == ["step-00000003"]


def test_every_infer_script_reads_its_model_folder_alone(runs, files, capsys, tmp_path, monkeypatch):
    """From another directory, with the Megatron checkpoint, config and vocabulary gone."""
    models = {}
    for name, run in runs.items():
        models[name] = shutil.copytree(run["work"] / "model", tmp_path / name / "model")
    hidden = tmp_path / "hidden"
    shutil.move(str(files["folder"]), hidden)  # the encoder's files are nowhere to be found
    monkeypatch.chdir(tmp_path)
    try:
        for name, (*_, infer, infer_flags) in RECIPES.items():
            code, out, err = run_script(infer, [*infer_flags, "--model_dir", models[name]], capsys)
            assert code == 0, (name, err[-2000:])
            assert out.strip(), name
        # --work_dir (the run folder) and --checkpoint_dir (its checkpoints) name the model folder beside them
        code, out, _ = run_script(RECIPES["ner"][3], [*RECIPES["ner"][4], "--work_dir", tmp_path / "ner"], capsys)
        assert code == 0 and "Result: " in out
        code, _, err = run_script(RECIPES["ner"][3], ["--model_dir", tmp_path / "nowhere"], capsys)
        assert code == 2 and "does not exist" in err
    finally:
        shutil.move(str(hidden), files["folder"])


def test_glue_predictor_gives_the_recipes_dev_predictions(runs):
    """TextClassifier on the dev file's rows predicts what the recipe's last evaluation wrote."""
    from nmod_nlp.data.glue import read_glue_file
    from nmod_nlp.inference import TextClassifier

    run = runs["glue"]
    labels_line, preds_line = (run["work"] / "mrpc.txt").read_text().splitlines()
    written = [int(float(x)) for x in preds_line.split("\t")[1].split()]
    examples = read_glue_file(run["data"] / "MRPC" / "dev.tsv", "mrpc", "dev").examples
    clf = TextClassifier.from_model_dir(run["work"] / "model")
    predicted = clf.predict([(e.text_a, e.text_b) for e in examples])
    assert [int(p["label"]) for p in predicted] == written
    assert all(abs(sum(p["scores"].values()) - 1) < 1e-5 for p in predicted)


def test_a_save_killed_half_way_leaves_no_hidden_folders(tmp_path):
    import torch

    from nmod.backends.pytorch.checkpoint import TrainerState, save_checkpoint

    (tmp_path / ".step-00000003.x1y2").mkdir()  # what a hard kill during a save leaves
    (tmp_path / ".step-00000002.old.abc").mkdir()
    save_checkpoint(tmp_path, step=4, modules={"m": torch.nn.Linear(2, 2)}, module_classes={"m": "torch.nn.Linear"},
                    trainer_state=TrainerState(4, 0, 0, {}, {}, [], {}, 1), keep=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000004"]


def test_int8_predictors_give_fp32_answers_within_tolerance(runs, capsys):
    """--precision int8 (dynamic quantization of the Linear layers): each class probability within 0.05
    of fp32's, the same label wherever fp32's margin is clear; the infer scripts take the flag."""
    import torch

    from nmod.core.errors import ConfigError
    from nmod_nlp.data.glue import read_glue_file
    from nmod_nlp.inference import TextClassifier, load_predictor
    from nmod_nlp.inference.precision import prepare_for_inference

    run = runs["glue"]
    examples = read_glue_file(run["data"] / "MRPC" / "dev.tsv", "mrpc", "dev").examples
    texts = [(e.text_a, e.text_b) for e in examples]
    fp32 = TextClassifier.from_model_dir(run["work"] / "model").predict(texts)
    int8 = load_predictor(run["work"] / "model", precision="int8")
    kinds = {type(m) for m in int8.encoder.modules()}
    assert torch.nn.Linear not in kinds and any(k.__module__.startswith("torch.ao.nn.quantized") for k in kinds)
    quantized = [m for m in int8.encoder.modules() if type(m).__module__.startswith("torch.ao.nn.quantized")]
    weight = quantized[0].weight()  # one scale per output channel, not one per tensor
    assert weight.qscheme() == torch.per_channel_affine and weight.q_per_channel_scales().numel() == weight.shape[0]
    for a, b in zip(fp32, int8.predict(texts)):
        assert max(abs(a["scores"][k] - b["scores"][k]) for k in a["scores"]) < 0.05
        top, second = sorted(a["scores"].values(), reverse=True)[:2]
        if top - second > 0.1:
            assert a["label"] == b["label"]
    code, out, err = run_script(RECIPES["ner"][3], [*RECIPES["ner"][4], "--model_dir", runs["ner"]["work"] / "model",
                                                    "--precision", "int8"], capsys)
    assert code == 0 and "Result: " in out, err[-2000:]
    with pytest.raises(ConfigError, match="precision must be one of"):
        prepare_for_inference([int8.head], None, "fp16")


def test_bf16_predictors_give_fp32_answers_within_bf16_rounding(runs, capsys):
    """--precision bf16 (bf16 autocast): fp32 outputs, each within bf16's rounding of fp32's, for a
    sequence and a token head; the weights stay fp32; the ONNX runtime refuses it; the scripts take it."""
    import torch

    from nmod.core.errors import ConfigError
    from nmod_nlp.inference import load_predictor

    ids = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 5, 3, 0, 0, 0]])
    types, mask = torch.zeros_like(ids), (ids != 0).long()
    for name in ("glue", "ner"):
        model_dir = runs[name]["work"] / "model"
        fp32, bf16 = (load_predictor(model_dir, precision=p) for p in ("fp32", "bf16"))
        with torch.no_grad():
            want, got = fp32.forward(ids, types, mask), bf16.forward(ids, types, mask)
        assert all(p.dtype == torch.float32 for p in bf16.encoder.parameters())
        for w, g in zip(want, got):
            assert g.dtype == torch.float32 and g.shape == w.shape
            assert not torch.equal(g, w)  # the products did run in bf16
            probs = lambda t: torch.softmax(t, -1)  # noqa: E731
            assert (probs(g) - probs(w)).abs().max() < 0.02
    with pytest.raises(ConfigError, match="precision 'bf16' runs on the torch runtime"):
        load_predictor(runs["glue"]["work"] / "model", runtime="onnxruntime", precision="bf16")
    code, out, err = run_script(RECIPES["glue"][3], [*RECIPES["glue"][4], "--model_dir", runs["glue"]["work"] / "model",
                                                     "--precision", "bf16"], capsys)
    assert code == 0, err[-2000:]


@pytest.mark.parametrize("activations", ["token", "tensor"])
def test_onnxruntime_int8_scales_each_output_channel(tmp_path, activations):
    """ONNX Runtime's int8 graph keeps one weight scale per output channel of a MatMul (per tensor cost
    1.6 CoNLL F1 points more), and computes the fp32 product within the quantization error, with one
    activation scale per token (the default) or per batch."""
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import numpy as np
    import onnxruntime
    import torch

    from nmod_nlp.inference.runtime import quantize_int8

    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    with torch.no_grad():
        linear.weight[0] *= 50  # one row far wider than the others: a per-tensor scale would flatten the rest
    x = torch.randn(2, 3, 16)
    torch.onnx.export(linear, (x,), tmp_path / "linear.onnx", input_names=["x"], dynamo=False)
    out = quantize_int8(tmp_path / "linear.onnx", tmp_path / "linear.int8.onnx", activations)
    graph = onnx.load(out).graph
    scales = [i for i in graph.initializer if i.name.endswith("_scale") and i.dims == [8]]
    assert len(scales) == 1
    per_token = any(n.op_type == "QuantizeLinear" for n in graph.node)  # the rewrite quantizes each row itself
    assert per_token == (activations == "token")
    got = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    want = linear(x).detach().numpy()
    # the narrow rows keep their own resolution: their error is far below the wide row's scale
    assert np.abs(got - want)[..., 1:].max() < 0.05 and np.abs(got - want).max() < 1.0


@pytest.mark.parametrize("name", ["squad", "glue", "ner", "intent_slot"])
def test_onnxruntime_predictors_give_eager_answers(name, runs, capsys):
    """runtime="onnxruntime": the encoder and head exported as one graph and served by ONNX Runtime give
    eager fp32's outputs (1e-4), its int8 within 0.05; the infer script takes --runtime."""
    pytest.importorskip("onnxruntime")
    import torch

    from nmod.core.errors import ConfigError
    from nmod_nlp.inference import load_predictor

    model_dir = runs[name]["work"] / "model"
    eager, ort, ort_int8 = (load_predictor(model_dir, runtime=r, precision=p)
                            for r, p in (("torch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")))
    ids = torch.tensor([[2, 7, 9, 11, 3, 0], [2, 5, 3, 0, 0, 0], [2, 8, 8, 6, 4, 3]])
    types = torch.tensor([[0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 0], [0, 0, 1, 1, 1, 1]])
    mask = (ids != 0).long()  # padded rows of several lengths, in one batch larger than the trace's
    with torch.no_grad():
        expected = eager.forward(ids, types, mask)
        got, got_int8 = ort.forward(ids, types, mask), ort_int8.forward(ids, types, mask)
    assert len(got) == len(expected) == len(eager.forward.head.output_ports)
    for e, g, q in zip(expected, got, got_int8):
        assert g.shape == e.shape
        torch.testing.assert_close(g, e, atol=1e-4, rtol=1e-4)
        probs = lambda t: torch.softmax(t.float(), -1)  # noqa: E731
        assert (probs(q) - probs(e)).abs().max() < 0.05
    script, flags = RECIPES[name][3], RECIPES[name][4]
    code, out, err = run_script(script, [*flags, "--model_dir", model_dir, "--runtime", "onnxruntime"], capsys)
    assert code == 0, err[-2000:]
    code, eager_out, err = run_script(script, [*flags, "--model_dir", model_dir], capsys)
    assert code == 0 and same_up_to_floats(*(printed(o.splitlines()[-1]) for o in (out, eager_out))), (out, eager_out)
    with pytest.raises(ConfigError, match="runtime must be one of"):
        load_predictor(model_dir, runtime="tensorrt")
    with pytest.raises(ConfigError, match="runs on the CPU"):
        load_predictor(model_dir, runtime="onnxruntime", device="cuda")


def printed(line: str):
    """A JSON line as its value; NeMo's `Result: ...` lines as they are."""
    try:
        return json.loads(line)
    except ValueError:
        return line


def same_up_to_floats(a, b, tol: float = 1e-4) -> bool:
    """Equal JSON values, numbers within ``tol``."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_up_to_floats(a[k], b[k], tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_up_to_floats(x, y, tol) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        return abs(a - b) <= tol
    return a == b


def test_onnxruntime_int8_per_token_keeps_ordinary_tokens_exact(tmp_path):
    """quantize_int8(activations="token"): one activation scale per token, so a token 100x wider than
    the rest leaves the others their resolution (one scale per batch flattens them), and every
    product matches fp32 within the int8 rounding of its own token."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import numpy as np
    import onnxruntime
    import torch

    from nmod_nlp.inference.runtime import quantize_int8

    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    x = torch.randn(2, 3, 16)
    x[0, 0] *= 100  # one outlier token, as [SEP] and punctuation are in a BERT's FFN
    torch.onnx.export(linear, (x,), tmp_path / "linear.onnx", input_names=["x"], dynamo=False,
                      dynamic_axes={"x": {0: "batch", 1: "time"}})
    want = linear(x).detach().numpy()
    error = {}
    for activations in ("token", "tensor"):
        out = quantize_int8(tmp_path / "linear.onnx", tmp_path / f"linear.{activations}.onnx", activations)
        got = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
        error[activations] = np.abs(got - want).reshape(6, 8)
    ordinary = slice(1, None)
    assert error["token"][ordinary].max() < 0.05  # 16 products of |x| < 4, |w| < 0.25 at 1/127 (1/63) steps
    assert error["tensor"][ordinary].max() > 5 * error["token"][ordinary].max()
    assert error["token"][0].max() < 0.05 * np.abs(want[0, 0]).max()  # the outlier token keeps its relative accuracy
    with pytest.raises(ValueError, match="activations must be"):
        quantize_int8(tmp_path / "linear.onnx", tmp_path / "x.onnx", "row")
