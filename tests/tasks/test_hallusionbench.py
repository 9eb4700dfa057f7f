"""HallusionBench: readers (both releases' file names, the HF snapshot), the bare-question prompt, both
rule-based parsers and aAcc / fAcc / qAcc worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_vqa2 import hallusion_items, write_hallusionbench, write_hallusionbench_parquet

HB = get_task("hallusionbench")
IMAGE_IDS = [i.sample_id for i in hallusion_items() if i.visual_input != "0"]


def _samples(root: Path) -> dict[str, Sample]:
    return {s.id: s for s in HB.load(write_hallusionbench(root)).samples}


def test_release_file_reads_the_image_questions(tmp_path: Path) -> None:
    ds = HB.load(write_hallusionbench(tmp_path))
    assert ds.format == "authors"
    assert [s.id for s in ds.samples] == IMAGE_IDS  # VS/chart/0/0/* (visual_input "0") skipped
    assert len(IMAGE_IDS) == 7
    edited = {s.id: s for s in ds.samples}["VD/illusion/0/1/0"]
    assert (edited.question, edited.target) == ("Is the image red?", "no")
    assert edited.meta == {
        "category": "VD",
        "subcategory": "illusion",
        "set_id": "0",
        "figure_id": "1",
        "question_id": "0",
        "gt_answer_details": "The answer is no.",
    }
    assert edited.images[0].path.endswith("hallusionbench/hallusion_bench/VD/illusion/0_1.png")


def test_both_releases_file_names_reach_the_same_images(tmp_path: Path) -> None:
    current = HB.load(write_hallusionbench(tmp_path / "a")).samples  # "./VD/illusion/0_0.png"
    first = HB.load(
        write_hallusionbench(tmp_path / "b", old_paths=True)
    ).samples  # "./hallusion_bench/VD/..."
    assert [Path(s.images[0].path).relative_to(tmp_path / "a") for s in current] == [
        Path(s.images[0].path).relative_to(tmp_path / "b") for s in first
    ]
    assert all(Path(s.images[0].path).is_file() for s in current + first)


def test_null_filename_falls_back_to_the_authors_rule(tmp_path: Path) -> None:
    folder = write_hallusionbench(tmp_path)
    path = folder / "HallusionBench.json"
    entries = json.loads(path.read_text())
    entries[-1]["filename"] = None  # VD/math set 1 figure 0, an image question
    path.write_text(json.dumps(entries))
    sample = {s.id: s for s in HB.load(folder).samples}["VD/math/1/0/0"]
    assert sample.images[0].path.endswith("hallusion_bench/VD/math/1_0.png")


def test_image_path_cannot_escape_the_data_root(tmp_path: Path) -> None:
    folder = write_hallusionbench(tmp_path)
    path = folder / "HallusionBench.json"
    entries = json.loads(path.read_text())
    entries[0]["filename"] = "./../../../etc/passwd"
    path.write_text(json.dumps(entries))
    with pytest.raises(InputError, match="escapes"):
        HB.load(folder)


def test_bad_gt_answer_is_named(tmp_path: Path) -> None:
    folder = write_hallusionbench(tmp_path)
    path = folder / "HallusionBench.json"
    entries = json.loads(path.read_text())
    entries[2]["gt_answer"] = "yes"
    path.write_text(json.dumps(entries))
    with pytest.raises(InputError, match=r"HallusionBench.json: entry 2: gt_answer 'yes' is neither"):
        HB.load(folder)


def test_snapshot_reads_the_image_split_only(tmp_path: Path) -> None:
    write_hallusionbench(tmp_path / "a")
    write_hallusionbench_parquet(tmp_path / "b")
    authors = HB.load(tmp_path / "a" / "hallusionbench")
    snapshot = HB.load(tmp_path / "b" / "hallusionbench")
    assert snapshot.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
    assert [key(s) for s in snapshot.samples] == [key(s) for s in authors.samples]


def test_prompt_is_the_bare_question(tmp_path: Path) -> None:
    sample = _samples(tmp_path)["VS/chart/0/1/1"]
    llava, lmms = HB.variant("llava"), HB.variant("lmms-eval")
    assert llava.prompt(sample) == lmms.prompt(sample) == "Is the chart yellow?"
    assert (llava.max_new_tokens, llava.image_mode) == (128, "pad")
    assert (lmms.max_new_tokens, lmms.image_mode) == (128, "native")


# replies per question; llava parses with yes_no_words (VLMEvalKit), lmms-eval with yes_no_contains
REPLIES = {
    "VD/illusion/0/0/0": "Yes, it is red.",  # gt yes: yes / yes
    "VD/illusion/0/0/1": "No.",  # gt no: no / no
    "VD/illusion/0/1/0": "Yes",  # gt no: yes / yes, both wrong
    "VD/illusion/0/1/1": "I think so: yes and no.",  # gt yes: both words -> unparsed / contains yes
    "VS/chart/0/1/0": "**Yes**",  # gt yes: '*' is no VQA punctuation -> unparsed / contains yes
    "VS/chart/0/1/1": "There are no yellow eyes.",  # gt no: the word no / "eyes" contains yes, wrong
    "VD/math/1/0/0": "Yes.",  # gt yes: yes / yes
}


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        # right: illusion 0/0/0, 0/0/1, chart 0/1/1, math 1/0/0 -> aAcc 4/7 = 57.142857
        # figures: illusion_0_0 {y, y} 1, illusion_0_1 {n, n} 0, chart_0_1 {n, y} 0, math_1_0 {y} 1 -> 2/4
        # questions: illusion_0_q0 {fig0 y, fig1 n} 0, illusion_0_q1 {y, n} 0, chart_0_q0 {n} 0,
        #            chart_0_q1 {y} 1, math_1_q0 {y} 1 -> 2/5
        ("llava", {"aacc": 57.142857, "facc": 50.0, "qacc": 40.0, "unparsed": 2, "failed": 0}),
        # right: all but illusion 0/1/0 and chart 0/1/1 -> aAcc 5/7 = 71.428571
        # figures: illusion_0_0 1, illusion_0_1 {n, y} 0, chart_0_1 {y, n} 0, math_1_0 1 -> 2/4
        # questions: illusion_0_q0 {y, n} 0, illusion_0_q1 {y, y} 1, chart_0_q0 1, chart_0_q1 0, math 1 -> 3/5
        ("lmms-eval", {"aacc": 71.428571, "facc": 50.0, "qacc": 60.0, "unparsed": 0, "failed": 0}),
    ],
)
def test_aggregate_by_hand(protocol: str, expected: dict[str, float], tmp_path: Path) -> None:
    by_id = _samples(tmp_path)
    variant = HB.variant(protocol)
    records = [
        make_prediction(HB, variant, PROTOCOLS[protocol], by_id[sid], by_id[sid].question, reply)
        for sid, reply in REPLIES.items()
    ]
    assert HB.aggregate_for("llava")(records) == expected


def test_judge_variant_by_hand(tmp_path: Path) -> None:
    """hallusionbench_judge: the judge reads each reply against gt_answer_details (a real server)."""
    from evalkit.judging import judge_records
    from evalkit.protocols import PROTOCOLS
    from evalkit.runner import make_prediction
    from evalkit.scoring.judge import Judge, JudgeConfig
    from tests.support.fixtures_vqa2 import write_hallusionbench
    from tests.support.openai_server import FakeOpenAIServer, last_user_text

    task = get_task("hallusionbench_judge")
    write_hallusionbench(tmp_path)
    samples = task.load(tmp_path / "hallusionbench").samples
    outputs = {"VD/illusion/0/1/0": "maybe", "VS/chart/0/1/1": "so-so"}  # the rest: "right"
    variant = task.variant("llava")
    records = [
        make_prediction(task, variant, PROTOCOLS["llava"], s, "", outputs.get(s.id, "right")) for s in samples
    ]
    assert {r.parse for r in records} == {"pending_judge"}

    def verdicts(body: dict) -> str:
        reply = last_user_text(body).split("Model's answer: ", 1)[1].split("\n", 1)[0]
        return {"maybe": "Unclear.", "so-so": "Correct? No, incorrect."}.get(reply, "Correct.")

    with FakeOpenAIServer(verdicts) as server:
        judged = judge_records(
            task, records, Judge(JudgeConfig("j", server.base_url, cache_dir=tmp_path / "c"))
        )
        assert server.calls == 7
    # 7 image questions, 5 right ("incorrect" anywhere is wrong, as the authors read it; unclear is wrong)
    # fAcc figures: illusion/0 (both right) ok, illusion/1 (q0 unclear) no, chart/1 (q1 wrong) no, math/0 ok
    # qAcc questions: illusion q0 (fig1 wrong) no, illusion q1 ok, chart q0 ok, chart q1 no, math q0 ok
    metrics = task.aggregate_for("llava")(judged)
    assert metrics["aacc"] == pytest.approx(500 / 7) and metrics["facc"] == 50.0
    assert metrics["qacc"] == 60.0 and metrics["pending"] == 0
    assert sorted(r.meta["grade"] for r in judged) == [0, 1, 1, 1, 1, 1, 2]
