"""`evalkit compare`: two runs of one task, sample by sample, with McNemar's exact test worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.fixtures import pope_items, write_mme, write_pope
from tests.test_e2e_openai import evalkit


def _run(tmp_path: Path, name: str, replies: dict[str, str], default: str, task: str = "pope") -> Path:
    file = tmp_path / f"{name}.json"
    file.write_text(json.dumps({"replies": replies, "default": default}))
    args = ["run", "--model", f"scripted:{file}", "--tasks", task, "--data-root", str(tmp_path / "data")]
    result = evalkit(*args, "--output", str(tmp_path / "out"), "--name", name, timeout=120)
    assert result.returncode == 0, result.stderr
    return tmp_path / "out" / name / task


def test_agreement_and_mcnemar_by_hand(tmp_path: Path) -> None:
    write_pope(tmp_path / "data")
    write_mme(tmp_path / "data")
    items = pope_items()
    ids = [f"{i.split}/{i.question_id}" for i in items]
    labels = {f"{i.split}/{i.question_id}": i.label for i in items}
    truth = {i: labels[i].capitalize() for i in ids}
    a = _run(tmp_path, "a", truth, "Yes")  # every answer right
    flipped = ids[:3]  # B wrong on three samples, identical elsewhere
    b = _run(tmp_path, "b", {**truth, **{i: "No" if labels[i] == "yes" else "Yes" for i in flipped}}, "Yes")
    result = evalkit("compare", str(a), str(b))
    assert result.returncode == 0, result.stderr
    n = len(ids)
    # discordant pairs: A right and B wrong on 3, the reverse on 0: two-sided exact p = 2 * 0.5**3 = 0.25
    assert result.stdout.splitlines() == [
        f"pope: {n} samples scored in both (only in A: 0, only in B: 0)",
        f"same reply: {n - 3} ({100 * (n - 3) / n:.1f}%)",
        f"same score: {n - 3} ({100 * (n - 3) / n:.1f}%)",
        f"mean score: A 1, B {(n - 3) / n:.4g}; A higher on 3, B higher on 0",
        "paired test: McNemar exact, p = 0.25",
    ]
    mme = _run(tmp_path, "c", {}, "Yes", task="mme")
    other = evalkit("compare", str(a), str(mme))
    assert (
        other.returncode == 2
        and "holds pope" in other.stderr
        and "compare runs of the same task" in other.stderr
    )
