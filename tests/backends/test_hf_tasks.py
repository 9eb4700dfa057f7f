"""Every task with a fixture end to end through the tiny transformers LLaVA: batched equals one at a time,
multi-image MMMU questions, MMBench's circular passes and the short-answer tasks included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.registry import get_task
from tests.support.fixtures_hf_mc import FIXTURES as HF_MC
from tests.support.fixtures_mc import FIXTURES as MC
from tests.support.fixtures_mmbench import FIXTURES as MMBENCH
from tests.support.fixtures_vqa import FIXTURES as VQA
from tests.support.fixtures_vqa2 import FIXTURES as VQA2
from tests.test_e2e_openai import evalkit, load_jsonl

WRITERS = {**MMBENCH, **MC, **HF_MC, **VQA, **VQA2}
TASKS = sorted(t for t in WRITERS if get_task(t).judged is None)  # judged tasks: see test_e2e_judged.py


@pytest.mark.slow
def test_tasks_batched_equal_single(tmp_path: Path) -> None:
    checkpoint = build_tiny_llava(tmp_path / "tiny")
    root = tmp_path / "data"
    for name in TASKS:
        WRITERS[name](root)
    outputs = {}
    for size in ("1", "4"):
        result = evalkit(
            "run",
            "--model",
            str(checkpoint),
            "--tasks",
            ",".join(TASKS),
            "--data-root",
            str(root),
            "--output",
            str(tmp_path / "out"),
            "--name",
            f"bs{size}",
            "--batch-size",
            size,
            "--protocol",
            "llava",
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        outputs[size] = {
            (task, r["id"]): r["output"]
            for task in TASKS
            for r in load_jsonl(tmp_path / "out" / f"bs{size}" / task / "predictions.jsonl")
        }
    assert outputs["1"] == outputs["4"]
    for task in TASKS:
        metrics = json.loads((tmp_path / "out" / "bs4" / task / "metrics.json").read_text())
        assert metrics["metrics"]["failed"] == 0, task
        assert metrics["n"] == sum(1 for t, _ in outputs["4"] if t == task)
    multi = [
        r
        for r in load_jsonl(tmp_path / "out" / "bs4" / "mmmu_val" / "predictions.jsonl")
        if r["prompt"].count("<image ") >= 2
    ]
    assert multi, "the MMMU fixture has a question with two images"
