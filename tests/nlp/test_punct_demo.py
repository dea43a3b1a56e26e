"""The punctuation recipe with no arguments (real MiniLM weights, the shipped sample), then inference
from the run's folder alone."""
import re

from recipe_runner import ROOT, run_recipe

EXAMPLES = ROOT / "examples" / "nlp" / "punctuation_capitalization"


def run(script, args, tmp_path) -> str:
    """The script as a user runs it (one thread per process, as every recipe test); run_recipe adds
    `--work_dir tmp_path/work`, which is also the folder the infer script reads the run from."""
    result = run_recipe(script, args, tmp_path, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def metric(stdout: str, when: str, name: str) -> float:
    match = re.search(rf"^Punctuation and capitalization {when} training: .*\b{name} ([\d.]+)", stdout, re.M)
    assert match, stdout[-3000:]
    return float(match.group(1))


def test_demo_raises_both_heads_and_infer_restores_text(tmp_path):
    # Half the demo's 6 epochs keeps CI under a minute; both heads still clearly improve.
    out = run(EXAMPLES / "punctuation_capitalization.py", ["--num_epochs", "3"], tmp_path)
    for head, gain in (("punct", 0.15), ("capit", 0.4)):
        before, after = metric(out, "before", f"{head}_macro_f1"), metric(out, "after", f"{head}_macro_f1")
        assert after > before + gain, (head, before, after)
    assert metric(out, "after", "capit_accuracy") > 0.9
    text = run(EXAMPLES / "punctuation_capitalization_infer.py", ["--queries", "how are you"], tmp_path)
    combined = re.search(r"^Combined: (.*)$", text, re.M).group(1)
    assert combined.startswith("How") and re.sub(r"[,.?]", "", combined) == "How are you"
