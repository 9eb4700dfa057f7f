"""What a run tells its user: plain progress lines in a log with no terminal, one combined table at the end of
a multi-task run, and --limit runs marked wherever their numbers are shown."""

from __future__ import annotations

import json
import re
from pathlib import Path

from evalkit.progress import LineProgress, duration
from tests.support.fixtures import write_mme, write_pope
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e_openai import evalkit, run_args


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_line_progress_rate_eta_and_throttle() -> None:
    lines: list[str] = []
    clock = Clock()
    progress = LineProgress(lines.append, every=30.0, clock=clock)
    progress("mme", 100, 1100)  # a resumed run: 100 kept, which do not count towards the rate
    assert lines == ["mme: resuming, 100 of 1100 samples kept"]
    clock.now += 10
    progress("mme", 300, 1100)  # within 30 s of the last line: nothing
    assert len(lines) == 1
    clock.now += 30  # 200 made in the 30 s since the first were made (at 300): 6.7/s, 600 left: 90 s
    progress("mme", 500, 1100)
    assert lines[-1] == "mme: 500/1100 (45.5%), 6.7 samples/s, ETA 1m30s"
    clock.now += 1
    progress("mme", 1100, 1100)  # the last one is always written, once
    progress("mme", 1100, 1100)
    assert lines[-1] == "mme: 1100/1100 (100.0%), 25.8 samples/s, done in 41s"  # 800 made in 31 s
    assert len(lines) == 3


def test_line_progress_rate_leaves_out_model_loading() -> None:
    """The first report comes before the model loads: the rate counts from the first samples made."""
    lines: list[str] = []
    clock = Clock()
    progress = LineProgress(lines.append, every=30.0, clock=clock)
    progress("pope", 0, 1000)
    clock.now += 60  # loading, then the first batch
    progress("pope", 100, 1000)
    assert lines[-1] == "pope: 100/1000 (10.0%)"  # no rate yet (0 + 100 in 60 s would say 1.7/s)
    clock.now += 30
    progress("pope", 400, 1000)  # 300 in 30 s: 10/s, 600 left
    assert lines[-1] == "pope: 400/1000 (40.0%), 10.0 samples/s, ETA 1m00s"
    progress = LineProgress(lines.append, every=30.0, clock=clock)
    progress("mme", 0, 8)
    clock.now += 4
    progress("mme", 8, 8)  # done at its first report of progress: the rate over the whole time
    assert lines[-1] == "mme: 8/8 (100.0%), 2.0 samples/s, done in 4s"


def test_duration() -> None:
    assert [duration(s) for s in (0.4, 59.6, 61, 3599, 3600, 7322)] == [
        "0s",
        "1m00s",
        "1m01s",
        "59m59s",
        "1h00m",
        "2h02m",
    ]


def test_log_progress_combined_table_and_limit_marks(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    write_pope(root)
    out = tmp_path / "out"
    with FakeOpenAIServer(lambda body: "Yes") as server:
        full = evalkit(*run_args(server, root, out, "mme,pope"), env={"EVALKIT_PROGRESS_SECONDS": "0"})
        assert full.returncode == 0, full.stderr
        limited = evalkit(*run_args(server, root, out, "pope", "--limit", "5", "--name", "smoke"))
        assert limited.returncode == 0, limited.stderr
    # stderr is a pipe here, as in a cluster job's log: plain lines, no bar drawing
    assert "\x1b[" not in full.stderr and "━" not in full.stderr
    mme_n = json.loads((out / "tiny-test" / "mme" / "metrics.json").read_text())["n"]
    assert re.search(
        rf"^mme: {mme_n}/{mme_n} \(100\.0%\), [0-9.]+ samples/s, done in \d+s$", full.stderr, re.M
    )
    # one table of both tasks at the end, primary metrics as in their metrics.json
    summary = full.stdout[full.stdout.index("tiny-test (llava)") :]
    for task in ("mme", "pope"):
        record = json.loads((out / "tiny-test" / task / "metrics.json").read_text())
        row = next(line for line in summary.splitlines() if f" {task} " in line)
        assert f"{record['metrics'][record['primary']]:.2f}" in row and record["primary"] in row

    # the --limit run: recorded as such, marked in the table, its sample count said
    smoke = json.loads((out / "smoke" / "pope" / "metrics.json").read_text())
    assert smoke["n"] == 5 and smoke["limit"] == 5 and smoke["data"]["samples"] > 5
    full_pope = json.loads((out / "tiny-test" / "pope" / "metrics.json").read_text())
    assert full_pope["limit"] is None and full_pope["data"]["samples"] == full_pope["n"]
    table = evalkit("table", str(out))
    assert table.returncode == 0, table.stderr
    rows = {line.split("|")[1].strip(): line for line in table.stdout.splitlines() if line.startswith("| ")}
    assert f"{smoke['metrics'][smoke['primary']]:.2f}†" in rows["smoke"]
    assert "†" not in rows["tiny-test"]
    assert "† a --limit run" in table.stdout
    smoke_records = out / "smoke" / "pope" / "predictions.jsonl"
    rescored = evalkit("score", "--task", "pope", "--predictions", str(smoke_records),
                       "--output", str(tmp_path / "rescored"))  # fmt: skip
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads((tmp_path / "rescored" / "metrics.json").read_text())["limit"] == 5  # still marked
    long = evalkit("table", str(out), "--layout", "long", "--format", "csv")
    header, *lines = long.stdout.splitlines()
    assert header.endswith(",limit")
    assert all(line.endswith(",5") for line in lines if line.startswith("smoke,"))
    assert all(line.endswith(",") for line in lines if line.startswith("tiny-test,"))
