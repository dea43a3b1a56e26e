"""The GLUE and text-classification recipes with no arguments: real MiniLM weights, the shipped samples."""
import re
import subprocess
import sys

from recipe_runner import ROOT

EXAMPLES = ROOT / "examples" / "nlp"


def run_demo(script, tmp_path) -> str:
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def metric(stdout: str, prefix: str, name: str) -> float:
    match = re.search(rf"^{prefix}: .*\b{name} ([\d.]+)", stdout, re.M)
    assert match, stdout[-3000:]
    return float(match.group(1))


def test_glue_demo_fine_tunes_sst2_sample_well_above_chance(tmp_path):
    out = run_demo(EXAMPLES / "glue_benchmark" / "glue_benchmark_with_bert.py", tmp_path)
    before, after = metric(out, "GLUE sst-2 before training", "acc"), metric(out, "GLUE sst-2 after training", "acc")
    assert before < 0.7 and after >= 0.85 and after > before + 0.25
    assert (tmp_path / "work_dir" / "glue" / "sst-2.txt").is_file()


def test_text_classification_demo_raises_accuracy_and_macro_f1(tmp_path):
    out = run_demo(EXAMPLES / "text_classification" / "text_classification_with_bert.py", tmp_path)
    prefix = "Text classification {} training"
    assert metric(out, prefix.format("after"), "accuracy") > metric(out, prefix.format("before"), "accuracy") + 0.25
    assert metric(out, prefix.format("after"), "macro_f1") > metric(out, prefix.format("before"), "macro_f1") + 0.25
    assert (tmp_path / "work_dir" / "text_classification" / "confusion_matrix.tsv").is_file()
