"""`evalkit demo`: the README's first command, end to end (tiny trained model, bundled samples)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_e2e_openai import evalkit


@pytest.mark.slow
def test_demo_runs_and_the_model_sees_the_images(tmp_path: Path) -> None:
    result = evalkit("demo", "--output", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| tiny-llava |" in result.stdout
    run = tmp_path / "results" / "tiny-llava"
    mme = json.loads((run / "mme" / "metrics.json").read_text())
    pope = json.loads((run / "pope" / "metrics.json").read_text())
    assert mme["data"]["format"] == "authors" and mme["n"] == 24 and pope["n"] == 18
    # The tiny model was trained to tell colours apart; the bundled questions ask about each image's colour,
    # half expecting yes and half no, so only a model that receives the right pixels scores this high.
    assert mme["metrics"]["color"] >= 175 and mme["metrics"]["artwork"] >= 175
    assert pope["metrics"]["f1"] >= 90
    again = evalkit("demo", "--output", str(tmp_path), timeout=600)  # reuses model and finished records
    assert again.returncode == 0 and "building" not in again.stdout
