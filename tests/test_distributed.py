"""Data parallelism under torchrun (2 CPU processes, gloo) and the merge of per-rank part files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evalkit.records import Prediction, read_predictions
from evalkit.store import merge_parts, part_path
from tests.support.fixtures import write_mme, write_pope
from tests.test_e2e_openai import evalkit, load_jsonl


def _p(i: str) -> Prediction:
    return Prediction(id=i, prompt="", output="Yes", answer="yes", score=1.0, parse="exact", meta={})


def test_merge_after_a_crash_half_way(tmp_path: Path) -> None:
    main = tmp_path / "predictions.jsonl"
    main.write_text("".join(_p(i).model_dump_json() + "\n" for i in ("a", "b")))
    # rank 0's part repeats b (merged before the crash), rank 1's ends in a torn line
    part_path(main, 0).write_text("".join(_p(i).model_dump_json() + "\n" for i in ("b", "c")))
    part_path(main, 1).write_text(_p("d").model_dump_json() + "\n" + _p("e").model_dump_json()[:20])
    merge_parts(main)
    assert [p.id for p in read_predictions(main)] == ["a", "b", "c", "d"]  # e was never complete: rerun
    assert not list(tmp_path.glob("*.rank*.jsonl"))


@pytest.mark.slow
def test_torchrun_two_ranks_equal_one_process(tmp_path: Path) -> None:
    from evalkit.demo.tiny_model import build_tiny_llava

    checkpoint = build_tiny_llava(tmp_path / "tiny")
    root = tmp_path / "data"
    write_mme(root)
    write_pope(root)
    common = [
        "--model",
        str(checkpoint),
        "--tasks",
        "mme,pope",
        "--data-root",
        str(root),
        "--output",
        str(tmp_path / "out"),
        "--batch-size",
        "3",
    ]
    single = evalkit("run", *common, "--name", "single", timeout=600)
    assert single.returncode == 0, single.stderr
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    dp = subprocess.run(
        [*torchrun, "-m", "evalkit.cli", "run", *common, "--name", "dp"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    assert dp.returncode == 0, dp.stderr[-3000:]
    for task, n in (("mme", 14), ("pope", 10)):
        ref = {r["id"]: r for r in load_jsonl(tmp_path / "out" / "single" / task / "predictions.jsonl")}
        got = load_jsonl(tmp_path / "out" / "dp" / task / "predictions.jsonl")
        assert len(got) == len({r["id"] for r in got}) == n
        assert {r["id"]: r["output"] for r in got} == {i: r["output"] for i, r in ref.items()}
        assert not list((tmp_path / "out" / "dp" / task).glob("*.rank*.jsonl"))
        metrics = [
            json.loads((tmp_path / "out" / name / task / "metrics.json").read_text())["metrics"]
            for name in ("single", "dp")
        ]
        assert metrics[0] == metrics[1]

    # another run holding the folder: rank 0 is refused the lock and tells rank 1, so both stop (no rank
    # waits for ever at a barrier)
    from evalkit.fs import FolderLock

    with FolderLock(tmp_path / "out" / "dp" / "mme"):
        busy = subprocess.run(
            [*torchrun, "-m", "evalkit.cli", "run", *common, "--name", "dp"],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
            check=False,
        )
    assert busy.returncode != 0
    assert busy.stderr.count("is in use by another evalkit run") == 2, busy.stderr[-3000:]
