"""scripts/evaluate_mask_completer.py end to end at a tiny size: every set scored, the end-to-end table, the JSON."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from amodal.models.mask_completer import MaskCompleter

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_script_scores_every_set_and_the_depth_with_each_mask(tmp_path):
    MaskCompleter().save_pretrained(tmp_path / "completer")
    output = tmp_path / "result.json"
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "evaluate_mask_completer.py"), "--model",
                          str(tmp_path / "completer"), "--count", "3", "--real-count", "3", "--size", "64",
                          "--depth-count", "3", "--depth-size", "56", "--output", str(output)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    report = json.loads(output.read_text())
    assert set(report["sets"]) == {"synth", "synth_rich", "real_pasted"}
    for result in report["sets"].values():
        assert set(result["summary"]) == {"visible", "convex_hull", "completer"}
        assert result["summary"]["visible"]["overall"]["hidden_iou"] == 0.0   # M_vis guesses no hidden pixel
        assert result["summary"]["convex_hull"]["overall"]["count"] == 3
    depth = report["end_to_end"]["summary"]
    assert set(depth) == {"true M_a", "completer", "visible", "convex_hull"}
    # M_vis as the mask leaves every hidden pixel at D_o: worse than the true mask on every scene
    assert depth["visible"]["overall"]["minus_reference"] > 0
    assert "end to end" in run.stdout and "| true M_a |" in run.stdout
