"""MMBench EN/CN and CCBench: circular passes (from the file or generated), exact prompts per protocol,
circular aggregation worked by hand, the submission export, and one run through a real HTTP server."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from evalkit.backends.base import Failure
from evalkit.data.images import DECODED, load_image
from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.records import Prediction, PredictionWriter
from evalkit.registry import get_task
from evalkit.reports.exports import export_mmbench
from evalkit.runner import make_prediction
from evalkit.task import Task
from tests.support.fixtures_mmbench import (
    ZH,
    en_questions,
    write_ccbench,
    write_cn_dev,
    write_cn_test,
    write_en_dev,
    write_en_dev_parquet,
    write_en_test,
    write_tsv,
)
from tests.support.openai_server import FakeOpenAIServer, last_user_text
from tests.test_e2e_openai import evalkit, load_jsonl, run_args, seen_colour

EN_DEV, EN_TEST, CN_DEV, CN_TEST, CC = (
    get_task(n) for n in ("mmbench_en_dev", "mmbench_en_test", "mmbench_cn_dev", "mmbench_cn_test", "ccbench")
)
MC = "\nAnswer with the option's letter from the given choices directly."


def load(task: Task, root: Path) -> dict[str, Sample]:
    return {s.id: s for s in task.load(root / "mmbench").samples}


def view(s: Sample) -> tuple[str, dict[str, str], str, str]:
    return s.question, s.meta["options"], s.target, s.group


# --- loading -----------------------------------------------------------------------------------------


def test_file_passes_are_used_as_they_are(tmp_path: Path) -> None:
    write_en_dev(tmp_path)  # holds its own rotated copies
    samples = load(EN_DEV, tmp_path)
    assert sorted(samples, key=int) == [
        "0", "1", "2", "3", "1000000", "1000001", "1000002", "1000003", "2000000", "2000002", "2000003",
        "3000000", "3000003",
    ]  # fmt: skip
    # question 2: green, yellow, red (answer A, green); copy 1 shows yellow, red, green -> green is C
    s = samples["1000002"]
    assert view(s) == ("Which colour fills the picture?", {"A": "yellow", "B": "red", "C": "green"}, "C", "2")
    assert (s.meta["index"], s.meta["g_index"], s.meta["pass"]) == (1000002, 2, 1)
    assert s.meta["l2_category"] == "finegrained_perception (instance-level)"  # read from `L2-category`
    assert samples["0"].meta["hint"] == "Look at the picture.\nIt has one colour."
    assert samples["1"].meta["hint"] is None and samples["1"].meta["options"] == {"A": "red", "B": "blue"}


def test_generated_passes_match_the_file_convention(tmp_path: Path) -> None:
    write_en_dev(tmp_path / "circular")
    write_tsv(tmp_path / "plain" / "mmbench" / "MMBench_DEV_EN.tsv", en_questions(), circular=False)
    from_file = load(EN_DEV, tmp_path / "circular")
    generated = load(EN_DEV, tmp_path / "plain")
    assert {k: view(s) for k, s in generated.items()} == {k: view(s) for k, s in from_file.items()}
    # by hand, question 0 (blue, red, green, yellow; answer B = red), rotated left k times:
    passes = [generated[i] for i in ("0", "1000000", "2000000", "3000000")]
    assert [(s.meta["options"], s.target) for s in passes] == [
        ({"A": "blue", "B": "red", "C": "green", "D": "yellow"}, "B"),
        ({"A": "red", "B": "green", "C": "yellow", "D": "blue"}, "A"),
        ({"A": "green", "B": "yellow", "C": "blue", "D": "red"}, "D"),
        ({"A": "yellow", "B": "blue", "C": "red", "D": "green"}, "C"),
    ]  # fmt: skip
    assert "2000001" not in generated  # two options, two passes
    assert [s.meta["pass"] for s in generated.values() if s.group == "2"] == [0, 1, 2]


def test_passes_share_one_image_decoded_once(tmp_path: Path) -> None:
    write_en_dev(tmp_path)
    samples = list(load(EN_DEV, tmp_path).values())
    refs = {s.group: {s2.images[0] for s2 in samples if s2.group == s.group} for s in samples}
    assert all(len(r) == 1 for r in refs.values())
    assert refs["3"] == refs["1"]  # question 3's cell names index 1
    before = DECODED.decoded
    colours = {s.id: load_image(s.images[0]).getpixel((0, 0)) for s in samples}
    assert DECODED.decoded - before == 3  # 13 passes, 3 distinct images
    assert colours["3000003"] == colours["1"] == (30, 40, 220)


def test_parquet_snapshot_reads_the_same_questions(tmp_path: Path) -> None:
    write_en_dev(tmp_path / "tsv")
    write_en_dev_parquet(tmp_path / "hf")
    tsv, hf = load(EN_DEV, tmp_path / "tsv"), load(EN_DEV, tmp_path / "hf")
    assert EN_DEV.load(tmp_path / "hf" / "mmbench").format == "hf-parquet"
    assert {k: view(s) for k, s in hf.items()} == {k: view(s) for k, s in tsv.items()}
    for protocol in ("llava", "lmms-eval"):  # the snapshot's "nan" hints are dropped in English
        prompt = EN_DEV.variant(protocol).prompt
        assert {k: prompt(s) for k, s in hf.items()} == {k: prompt(s) for k, s in tsv.items()}
    assert len({s.images[0] for s in hf.values() if s.group == "0"}) == 1
    assert load_image(hf["2000002"].images[0]).getpixel((0, 0)) == (30, 200, 40)


def test_test_file_without_answers_and_the_other_files(tmp_path: Path) -> None:
    write_en_test(tmp_path, answers=False)
    samples = load(EN_TEST, tmp_path)
    assert sorted(samples) == ["0", "1", "1000000", "1000001", "2000000", "3000000"]
    assert all(s.target == "" and s.meta["split"] == "test" for s in samples.values())
    write_cn_test(tmp_path, answers=False)
    assert len(load(CN_TEST, tmp_path)) == 9 and not any(s.target for s in load(CN_TEST, tmp_path).values())
    write_ccbench(tmp_path)
    cc = load(CC, tmp_path)
    assert (
        cc["1000001"].meta["options"] == {"A": ZH["blue"], "B": ZH["yellow"]} and cc["1000001"].target == "B"
    )
    assert cc["0"].meta["hint"] is None and cc["0"].meta["l2_category"] == ""


def test_bad_rows_name_file_and_line(tmp_path: Path) -> None:
    path = write_cn_dev(tmp_path)
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    frame.loc[1, "answer"] = "D"  # a two-option question whose answer's option LLaVA would not show
    frame.to_csv(path, sep="\t", index=False)
    index = frame.loc[1, "index"]
    passes = [s for s in CN_DEV.load(tmp_path / "mmbench").samples if s.group == index]
    # loaded as LLaVA shows it: one pass with the two options, the answer out of reach (always wrong)
    assert [(s.id, s.target, len(s.meta["options"])) for s in passes] == [(index, "D", 2)]
    path.unlink()
    with pytest.raises(InputError, match=r"none of MMBench_DEV_CN\.tsv, mmbench_dev_cn_20231003\.tsv"):
        CN_DEV.load(tmp_path / "mmbench")


# --- prompts -----------------------------------------------------------------------------------------


def test_prompts_english(tmp_path: Path) -> None:
    write_en_dev(tmp_path)
    s = load(EN_DEV, tmp_path)
    llava, lmms = EN_DEV.variant("llava"), EN_DEV.variant("lmms-eval")
    assert llava.prompt(s["1000000"]) == (
        "Look at the picture.\nIt has one colour.\nWhat colour is the image?"
        "\nA. red\nB. green\nC. yellow\nD. blue" + MC
    )
    assert llava.prompt(s["1"]) == "Is the image red or blue?\nA. red\nB. blue" + MC
    assert lmms.prompt(s["1000000"]) == (
        "Look at the picture.\nIt has one colour. What colour is the image? There are several options:"
        "\nA. red\nB. green\nC. yellow\nD. blue\n" + MC
    )
    assert (
        lmms.prompt(s["1"]) == "Is the image red or blue? There are several options:\nA. red\nB. blue\n" + MC
    )
    assert (llava.max_new_tokens, llava.image_mode, lmms.max_new_tokens, lmms.image_mode) == (
        1024, "pad", 1024, "native",
    )  # fmt: skip


def test_prompts_chinese_and_ccbench(tmp_path: Path) -> None:
    write_cn_dev(tmp_path)
    write_ccbench(tmp_path)
    cn, cc = load(CN_DEV, tmp_path), load(CC, tmp_path)
    hint = "请看图片。\n图片只有一种颜色。"
    assert CN_DEV.variant("llava").prompt(cn["0"]) == (
        f"{hint}\n图中是什么颜色？\nA. 蓝色\nB. 红色\nC. 绿色\nD. 黄色\n请直接回答选项字母。"
    )
    assert CN_DEV.variant("lmms-eval").prompt(cn["1000001"]) == (
        "图片是黄色还是绿色？ There are several options:\nA. 绿色\nB. 黄色\n"
        "\n请直接使用所提供的选项字母作为答案回答。"
    )
    assert (
        CC.variant("llava").prompt(cc["1"]) == "这件文物是什么颜色？\nA. 黄色\nB. 蓝色\n请直接回答选项字母。"
    )
    assert CC.variant("lmms-eval").prompt(cc["1"]) == (
        "这件文物是什么颜色？ There are several options:\nA. 黄色\nB. 蓝色\n"
        "\n请直接使用所提供的选项字母作为答案回答。"
    )
    assert {t.variant("lmms-eval").max_new_tokens for t in (CN_DEV, CN_TEST, CC)} == {256}
    # a hint stored as the string "nan" (lmms-lab's parquet): LLaVA and lmms-eval EN drop it, lmms-eval CN
    # keeps it (cn_utils checks only pd.notna), CCBench never reads the hint
    nan = Sample("5", (), "问题", "A", {"hint": "nan", "options": {"A": "是", "B": "否"}})
    assert CN_DEV.variant("lmms-eval").prompt(nan).startswith("nan 问题 There are several options:")
    assert CC.variant("lmms-eval").prompt(nan).startswith("问题 There")
    assert EN_DEV.variant("lmms-eval").prompt(nan).startswith("问题 There")
    assert CN_DEV.variant("llava").prompt(nan).startswith("问题\nA. 是")


# --- aggregation -------------------------------------------------------------------------------------


def predict(task: Task, sample: Sample, output: str | Failure, protocol: str = "llava") -> Prediction:
    variant = task.variant(protocol)
    return make_prediction(task, variant, PROTOCOLS[protocol], sample, variant.prompt(sample), output)


def hand_worked(samples: dict[str, Sample]) -> list[Prediction]:
    """q0 every pass right; q1 pass 0 wrong; q2 its last pass unparsed; q3 one pass failed."""
    outputs: dict[str, str | Failure] = {s: samples[s].target for s in samples}
    outputs["1"] = "A"  # target B
    outputs["2000002"] = "I cannot tell."
    outputs["1000003"] = Failure("HTTP 500")
    return [predict(EN_DEV, samples[s], o) for s, o in outputs.items()]


def test_circular_aggregation_by_hand(tmp_path: Path) -> None:
    write_en_dev(tmp_path)
    predictions = hand_worked(load(EN_DEV, tmp_path))
    expected = {
        "overall": 25.0,  # only q0 has every pass right
        "vanilla": 75.0,  # pass 0: q0, q2, q3 right; q1 wrong
        "finegrained_perception_instance_level": 50.0,  # l2 of q0 (right) and q2 (wrong)
        "coarse_perception": 0.0,  # q1, q3
        "attribute_recognition": 50.0,  # category of q0, q2
        "image_style": 0.0,  # q1, q3
        "unparsed": 1,
        "failed": 1,
    }
    for seed in range(4):  # records arrive in any order across batches
        random.Random(seed).shuffle(predictions)
        assert EN_DEV.aggregate_for("llava")(predictions) == pytest.approx(expected)
    assert EN_DEV.primary == "overall"


def test_test_file_reports_counts_only(tmp_path: Path) -> None:
    write_en_test(tmp_path, answers=False)
    samples = load(EN_TEST, tmp_path)
    outputs = ["A", "B", "The answer is A", "hmm", "B", "C"]  # C: no such option in question 1's passes
    predictions = [predict(EN_TEST, s, o) for s, o in zip(samples.values(), outputs, strict=True)]
    assert all(p.score == 0.0 for p in predictions)
    assert EN_TEST.aggregate_for("llava")(predictions) == {"unparsed": 2, "failed": 0, "answered": 4}


# --- export ------------------------------------------------------------------------------------------


def write_run(folder: Path, predictions: list[Prediction]) -> Path:
    with PredictionWriter(folder / "predictions.jsonl") as writer:
        writer.write(predictions)
    return folder


def read_xlsx(path: Path) -> list[list[openpyxl.cell.Cell]]:
    return [list(row) for row in openpyxl.load_workbook(path).active.iter_rows()]


def test_export_xlsx_and_tsv(tmp_path: Path) -> None:
    write_en_dev(tmp_path)
    samples = load(EN_DEV, tmp_path)
    replies = {"0": "=1+1", "1": "#N/A", "2": "答案是 A\tsecond\nline", "3": "B\x07"}
    run = write_run(tmp_path / "run" / "mmbench_en_dev", [
        predict(EN_DEV, s, replies.get(i, s.target)) for i, s in reversed(list(samples.items()))
    ])  # fmt: skip
    header = [
        "index",
        "question",
        "hint",
        "A",
        "B",
        "C",
        "D",
        "prediction",
        "category",
        "l2-category",
        "split",
    ]
    header.append("answer")
    (xlsx,) = export_mmbench(run, tmp_path / "out" / "sub.xlsx", allow_missing=True)
    rows = read_xlsx(xlsx)
    assert [c.value for c in rows[0]] == header
    # one row per pass, in index order; the index a number (as LLaVA's converter writes it), the rest text
    assert [r[0].value for r in rows[1:]] == sorted(int(i) for i in samples)
    assert all(r[0].data_type == "n" for r in rows[1:])
    assert all(c.data_type == "s" for r in rows for c in r[1:] if c.value is not None)
    table = {str(r[0].value): [str(r[0].value)] + [c.value or "" for c in r[1:]] for r in rows[1:]}
    assert table["0"][7] == "=1+1" and table["1"][7] == "#N/A"  # text, never a formula or error
    assert table["2"][7] == "答案是 A\tsecond\nline" and table["3"][7] == "B"  # control character dropped
    assert table["0"][2] == "Look at the picture.\nIt has one colour."
    assert table["1000002"][1:] == [
        "Which colour fills the picture?", "", "yellow", "red", "green", "", "C", "attribute_recognition",
        "finegrained_perception (instance-level)", "dev", "C",
    ]  # fmt: skip

    (tsv,) = export_mmbench(run, tmp_path / "out" / "sub.tsv", allow_missing=True)
    frame = pd.read_csv(tsv, sep="\t", dtype=str, keep_default_na=False)
    assert list(frame.columns) == header
    assert frame.set_index("index").loc["2", "prediction"] == "答案是 A\tsecond\nline"
    assert frame.set_index("index").loc["3", "prediction"] == "B\x07"
    tsv_rows = [[v.replace("\x07", "") for v in r] for r in frame.itertuples(index=False)]
    assert tsv_rows == [table[r[0]] for r in tsv_rows]  # the same table, bar xlsx's dropped control character
    (default,) = export_mmbench(run, tmp_path / "folder", allow_missing=True)
    assert default == tmp_path / "folder" / "mmbench_en_dev.xlsx"


def test_export_without_answers_ccbench_and_limits(tmp_path: Path) -> None:
    write_en_test(tmp_path, answers=False)
    write_ccbench(tmp_path)
    test_run = write_run(tmp_path / "t", [predict(EN_TEST, s, "A") for s in load(EN_TEST, tmp_path).values()])
    (xlsx,) = export_mmbench(test_run, tmp_path / "t.xlsx", allow_missing=True)
    assert "answer" not in [c.value for c in read_xlsx(xlsx)[0]]
    cc_run = write_run(tmp_path / "cc", [predict(CC, s, s.target) for s in load(CC, tmp_path).values()])
    (cc_xlsx,) = export_mmbench(cc_run, tmp_path / "cc.xlsx", allow_missing=True)
    rows = read_xlsx(cc_xlsx)
    cc_row = [str(rows[1][0].value)] + [c.value or "" for c in rows[1][1:]]
    assert cc_row[:8] == ["0", "这幅画的主色是什么？", "", "绿色", "红色", "蓝色", "黄色", "B"]
    assert cc_row[8:] == ["calligraphy_painting", "", "dev", "B"]  # no l2-category in CCBench

    long = [predict(CC, s, "B" * 40_000) for s in load(CC, tmp_path).values()]
    long_run = write_run(tmp_path / "long", long)
    with pytest.raises(
        InputError, match=r"40,000 characters, over xlsx's 32,767 per cell; export to a \.tsv"
    ):
        export_mmbench(long_run, tmp_path / "long.xlsx", allow_missing=True)
    (tsv,) = export_mmbench(long_run, tmp_path / "long.tsv", allow_missing=True)
    assert (pd.read_csv(tsv, sep="\t", dtype=str)["prediction"].str.len() == 40_000).all()
    with pytest.raises(InputError, match=r"\.xlsx or \.tsv"):
        export_mmbench(long_run, tmp_path / "long.csv", allow_missing=True)


# --- end to end --------------------------------------------------------------------------------------


def option_reply(body: dict) -> str:
    """A 'model' that looks at the image and answers with the letter of the option naming its colour, in
    a few forms; the second pass of the red-or-blue question gets a formula-looking, unparseable reply."""
    text = last_user_text(body)
    options = dict(re.findall(r"^([A-E])\. (.+)$", text, flags=re.M))
    letter = next(k for k, v in options.items() if v == seen_colour(body))
    if text.startswith("Is the image red or blue?") and options["A"] == "blue":
        return "=SUM(A1:A2)"
    return f"The answer is ({letter})." if "What colour is the image?" in text else letter


def test_run_and_export_through_a_server(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_en_dev(root)
    with FakeOpenAIServer(option_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "mmbench_en_dev"))
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    assert len(bodies) == 13 and {b["max_tokens"] for b in bodies} == {1024}
    run = tmp_path / "out" / "tiny-test" / "mmbench_en_dev"
    record = json.loads((run / "metrics.json").read_text())
    assert record["primary"] == "overall" and record["n"] == 13
    # q1 fails its second pass; q0, q2, q3 answered right in every rotation (letters remapped per pass)
    assert record["metrics"] == pytest.approx({
        "overall": 75.0, "vanilla": 100.0, "finegrained_perception_instance_level": 100.0,
        "coarse_perception": 50.0, "attribute_recognition": 100.0, "image_style": 50.0,
        "unparsed": 1, "failed": 0,
    })  # fmt: skip
    records = {r["id"]: r for r in load_jsonl(run / "predictions.jsonl")}
    assert records["3000000"]["answer"] == "C" and records["3000000"]["parse"] == "vlmeval_option"
    assert records["1000002"]["answer"] == "C" and records["1000001"]["parse"] == "unparsed"

    rescored = evalkit("score", "--task", "mmbench_en_dev", "--predictions", str(run / "predictions.jsonl"),
                       "--output", str(tmp_path / "rescored"))  # fmt: skip
    assert rescored.returncode == 0, rescored.stderr  # records carry options and groups: no data needed
    assert json.loads((tmp_path / "rescored" / "metrics.json").read_text())["metrics"] == record["metrics"]

    out = tmp_path / "submission.xlsx"
    exported = evalkit("export", "mmbench", str(run), "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    rows = {str(r[0].value): r for r in read_xlsx(out)[1:]}
    assert (
        len(rows) == 13 and rows["1000001"][7].value == "=SUM(A1:A2)" and rows["1000001"][7].data_type == "s"
    )
    assert rows["3000000"][7].value == "The answer is (C)."
