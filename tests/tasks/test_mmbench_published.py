"""MMBench test splits now that their answers are published: a test file with every answer is scored
(circular accuracy worked by hand) and says so, one without answers gives counts and the server export, a
file answering some rows only is refused naming its row; tables show "-" where a test run has no score."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.registry import get_task, task_groups
from evalkit.reports.exports import export_mmbench
from tests.support.fixtures_mmbench import write_ccbench, write_cn_test, write_en_dev, write_en_test
from tests.support.fixtures_published import write_cn_test_v11, write_en_test_v11
from tests.support.openai_server import FakeOpenAIServer
from tests.tasks.test_mmbench import option_reply, predict, read_xlsx, write_run
from tests.test_e2e_openai import evalkit, run_args

EN_TEST, EN_V11, CN_V11 = (
    get_task(n) for n in ("mmbench_en_test", "mmbench_en_test_v11", "mmbench_cn_test_v11")
)


def load(task_name: str, root: Path) -> dict[str, Sample]:
    return {s.id: s for s in get_task(task_name).load(root / "mmbench").samples}


# Every pass of the four EN questions with its right letter, worked from the options rotated left:
# q0 (blue, red, green, yellow; red): B A D C; q1 (red, blue; blue): B A;
# q2 (green, yellow, red; green): A C B; q3 (yellow, red, green, blue; blue): D C B A.
RIGHT = {
    "0": "B", "1000000": "A", "2000000": "D", "3000000": "C",
    "1": "B", "1000001": "A",
    "2": "A", "1000002": "C", "2000002": "B",
    "3": "D", "1000003": "C", "2000003": "B", "3000003": "A",
}  # fmt: skip
# q0 right in every pass; q1 wrong in its second pass; q2 wrong in its first; q3 unparsed in its last
REPLIES = RIGHT | {"1000001": "B", "2": "B", "3000003": "I cannot tell."}


def test_v11_files_are_read_with_their_answers(tmp_path: Path) -> None:
    write_en_test_v11(tmp_path)
    samples = load("mmbench_en_test_v11", tmp_path)
    assert {i: s.target for i, s in samples.items()} == RIGHT  # the passes made here, answers moved with them
    assert {s.meta["split"] for s in samples.values()} == {"test"}
    write_cn_test_v11(tmp_path)  # a file with its own circular copies: 4 + 2 + 3 passes
    assert sorted(load("mmbench_cn_test_v11", tmp_path)) == sorted(
        ["0", "1000000", "2000000", "3000000", "1", "1000001", "2", "1000002", "2000002"]
    )
    assert task_groups()["mmbench_test_v11"] == ("mmbench_en_test_v11", "mmbench_cn_test_v11")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"mmbench_en_test_v11: none of MMBench_TEST_EN_V11\.tsv in .*empty"):
        EN_V11.load(tmp_path / "empty")
    (tmp_path / "mmbench" / "MMBench_TEST_EN_V11.tsv").unlink()
    write_en_test(tmp_path)  # v1.0's test file never stands in for v1.1's
    with pytest.raises(InputError, match=r"none of MMBench_TEST_EN_V11\.tsv"):
        EN_V11.load(tmp_path / "mmbench")


def test_published_answers_score_circularly_by_hand(tmp_path: Path) -> None:
    write_en_test_v11(tmp_path)
    samples = load("mmbench_en_test_v11", tmp_path)
    predictions = [predict(EN_V11, s, REPLIES[i]) for i, s in samples.items()]
    assert EN_V11.aggregate_for("llava")(predictions) == pytest.approx({
        "overall": 25.0,  # of 4 questions only q0 has every pass right
        "vanilla": 75.0,  # first passes: q0, q1, q3 right, q2 wrong
        "finegrained_perception_instance_level": 50.0,  # q0 right, q2 wrong
        "coarse_perception": 0.0,  # q1, q3 both miss a pass
        "attribute_recognition": 50.0,  # q0, q2
        "image_style": 0.0,  # q1, q3
        "published_answers": 4,  # questions scored against the published answers
        "unparsed": 1,
        "failed": 0,
    })  # fmt: skip
    assert EN_V11.primary == "overall" and EN_V11.version == EN_TEST.version == 3


def test_which_splits_say_published(tmp_path: Path) -> None:
    """v1.0 test with answers says so too; dev files and CCBench (answers always in the file) do not."""
    write_en_test(tmp_path)  # q0, q1 (v1.0 name, answers present)
    write_en_dev(tmp_path)
    write_ccbench(tmp_path)
    for name, questions in (("mmbench_en_test", 2), ("mmbench_en_dev", None), ("ccbench", None)):
        task = get_task(name)
        metrics = task.aggregate_for("llava")(
            [predict(task, s, s.target) for s in load(name, tmp_path).values()]
        )
        assert metrics["overall"] == 100.0 and metrics.get("published_answers") == questions, name


def test_without_answers_counts_only(tmp_path: Path) -> None:
    write_en_test_v11(tmp_path, answers=False)
    samples = load("mmbench_en_test_v11", tmp_path)
    assert not any(s.target for s in samples.values()) and len(samples) == 13  # still every circular pass
    predictions = [predict(EN_V11, s, REPLIES[i]) for i, s in samples.items()]
    assert all(p.score == 0.0 for p in predictions)
    # 12 replies read as a letter, one unparsed; nothing to compare with, so no accuracy key at all
    assert EN_V11.aggregate_for("llava")(predictions) == {"answered": 12, "unparsed": 1, "failed": 0}


def _blank_answer(path: Path, index: int) -> None:
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.loc[frame["index"] == str(index), "answer"] = ""
    frame.to_csv(path, sep="\t", index=False)


def test_a_partly_answered_file_is_refused_naming_its_row(tmp_path: Path) -> None:
    path = write_en_test(tmp_path)  # q0's hint spans lines 2-3 (a quoted newline), q1 is the row at line 4
    _blank_answer(path, 1)
    with pytest.raises(
        InputError, match=r"mmbench_test_20230712\.tsv:4: no answer, while 1 of the 2 rows of "
    ):
        EN_TEST.load(tmp_path / "mmbench")
    path = write_cn_test(tmp_path)  # its own circular copies: a copy without its answer is refused too
    _blank_answer(path, 2000002)
    with pytest.raises(InputError, match=r"MMBench_TEST_CN\.tsv:\d+: no answer, while 8 of the 9 rows"):
        get_task("mmbench_cn_test").load(tmp_path / "mmbench")
    path = write_en_dev(tmp_path)  # the same rule on a dev file missing one answer
    _blank_answer(path, 3000003)
    with pytest.raises(InputError, match=r"MMBench_DEV_EN\.tsv:\d+: no answer, while 12 of the 13 rows"):
        get_task("mmbench_en_dev").load(tmp_path / "mmbench")


def test_export_with_published_answers_keeps_them(tmp_path: Path) -> None:
    write_en_test_v11(tmp_path)
    samples = load("mmbench_en_test_v11", tmp_path)
    run = write_run(tmp_path / "run", [predict(EN_V11, s, REPLIES[i]) for i, s in samples.items()])
    (xlsx,) = export_mmbench(run, tmp_path / "sub.xlsx", allow_missing=True)
    rows = read_xlsx(xlsx)
    header = [c.value for c in rows[0]]
    assert header[-1] == "answer" and header[7] == "prediction"
    table = {str(r[0].value): (r[7].value, r[-1].value) for r in rows[1:]}
    assert table == {i: (REPLIES[i], RIGHT[i]) for i in RIGHT}


def test_run_export_and_tables_without_answers(tmp_path: Path) -> None:
    """The whole path for a test file without answers: run, counts only, the server xlsx, '-' in tables."""
    root = tmp_path / "data"
    write_en_test(root, answers=False)
    out = tmp_path / "out"
    with FakeOpenAIServer(option_reply) as server:
        result = evalkit(*run_args(server, root, out, "mmbench_en_test", "--protocol", "vlmevalkit"))
        assert result.returncode == 0, result.stderr
    run = out / "tiny-test" / "mmbench_en_test"
    record = json.loads((run / "metrics.json").read_text())
    # 6 passes; the second pass of the red-or-blue question gets "=SUM(A1:A2)", which no rule reads
    assert record["metrics"] == {"answered": 5, "unparsed": 1, "failed": 0} and record["primary"] == "overall"

    exported = evalkit("export", "mmbench", str(run), "--out", str(tmp_path / "sub.xlsx"))
    assert exported.returncode == 0, exported.stderr
    book = openpyxl.load_workbook(tmp_path / "sub.xlsx").active
    rows = [[c.value for c in r] for r in book.iter_rows()]
    assert rows[0] == ["index", "question", "hint", "A", "B", "C", "D", "prediction", "category",
                       "l2-category", "split"]  # fmt: skip
    assert [r[0] for r in rows[1:]] == [0, 1, 1000000, 1000001, 2000000, 3000000]
    assert {r[0]: r[7] for r in rows[1:]}[1000001] == "=SUM(A1:A2)" and {r[10] for r in rows[1:]} == {"test"}

    xtuner = evalkit("table", str(out), "--layout", "xtuner", "--format", "csv")
    assert xtuner.returncode == 0, xtuner.stderr
    line = dict(zip(*[row.split(",") for row in xtuner.stdout.strip().splitlines()], strict=True))
    assert line["MMBench Test (EN)"] == "-"  # no score: never 0
    wide = evalkit("table", str(out))
    assert wide.returncode == 0, wide.stderr
    assert wide.stdout.splitlines()[2] == "| tiny-test | - |"  # the run is listed; no primary, no number
