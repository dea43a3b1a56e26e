"""`make demo`'s main job: fine-tuning the real pretrained MiniLM on the shipped sample raises F1."""
import re
import subprocess
import sys
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[2] / "examples" / "nlp" / "question_answering" / "question_answering_squad.py"


def metrics(stdout: str, when: str) -> tuple[float, float]:
    match = re.search(rf"SQuAD {when}: EM ([\d.]+)\s+F1 ([\d.]+)", stdout)
    assert match, stdout[-3000:]
    return float(match.group(1)), float(match.group(2))


def test_demo_fine_tune_raises_f1_well_above_untrained(tmp_path):
    result = subprocess.run([sys.executable, str(RECIPE), "--work_dir", str(tmp_path / "work")],
                            capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    em_before, f1_before = metrics(result.stdout, "before training")
    em_after, f1_after = metrics(result.stdout, "after training")
    assert f1_before < 10  # the QA head starts untrained
    assert f1_after > f1_before + 20 and em_after > em_before + 15
    assert (tmp_path / "work" / "predictions.json").is_file()
