"""Protocol `vlmevalkit` (VLMEvalKit 3562b54f with LLaVA_XTuner, exact matching): prompts, parsers and
metrics on cases worked by hand from VLMEvalKit's code, and a run through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.data.readers import Sample
from evalkit.protocols import PROTOCOLS
from evalkit.protocols.vlmevalkit import option_prompt
from evalkit.records import Prediction
from evalkit.registry import get_task
from evalkit.scoring.vqa import vqa_vlmeval
from evalkit.stages import make_prediction
from tests.support.fixtures import write_mme
from tests.support.fixtures_vqa import ten
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e_openai import colour_reply, evalkit, run_args

VLM = PROTOCOLS["vlmevalkit"]
EN = "\nAnswer with the option's letter from the given choices directly."
CN = "\n请直接回答选项字母。"
CARD = ["mmbench_en_test", "mmbench_cn_test", "ccbench", "mmmu_val", "seed_image", "ai2d", "scienceqa_img",
        "hallusionbench", "pope", "gqa", "textvqa_val", "mme", "mmstar"]  # fmt: skip


def sample(question: str, options: dict[str, str], hint: str | None = None, **meta: object) -> Sample:
    return Sample("1", (), question, "A", {"options": options, "hint": hint, **meta})


def test_every_column_of_the_xtuner_card_runs_under_vlmevalkit() -> None:
    assert all("vlmevalkit" in get_task(name).protocols for name in CARD)
    assert get_task("mmbench_en_dev").variant("vlmevalkit").max_new_tokens == 5
    assert get_task("textvqa_val").variant("vlmevalkit").max_new_tokens == 512
    assert {get_task(n).variant("vlmevalkit").image_mode for n in CARD} == {"pad"}


# LLaVA_XTuner.build_prompt: [hint\n]question, "\nA. x" per option, then "\n" + the instruction (Chinese when
# the text holds a CJK character)
PROMPTS = [
    (sample("What is it?", {"A": "cat", "B": "dog"}), "What is it?\nA. cat\nB. dog" + EN),
    (
        sample("What is it?", {"A": "cat", "B": "dog"}, hint="Look."),
        "Look.\nWhat is it?\nA. cat\nB. dog" + EN,
    ),
    (sample("What is it?", {"A": "cat"}, hint="nan"), "What is it?\nA. cat" + EN),  # pandas: NaN, no hint
    (sample("What is it?", {"A": "猫", "B": "dog"}), "What is it?\nA. 猫\nB. dog" + CN),  # CJK in an option
    (sample("这是什么？", {"A": "cat"}), "这是什么？\nA. cat" + CN),
    (sample("How many?", {}), "How many?" + EN),  # no options (an MMMU open question): still the letter line
]


@pytest.mark.parametrize(("s", "expected"), PROMPTS)
def test_option_prompt(s: Sample, expected: str) -> None:
    assert option_prompt(s) == expected


def test_mmstar_and_mmmu_prompts() -> None:
    mmstar = get_task("mmstar").variant("vlmevalkit")
    s = sample("Which colour?\nOptions: A: red, B: blue", {"A": "red", "B": "blue", "C": "", "D": ""})
    assert mmstar.prompt(s) == "Which colour?\nA. red\nB. blue" + EN  # options from the columns, none empty
    mmmu = get_task("mmmu_val").variant("vlmevalkit")
    mc = sample("<image 1> Which is larger, <image 2> or this?", {"A": "left", "B": "right"},
                question_type="multiple-choice")  # fmt: skip
    # split_MMMU: every marker becomes a line break; LLaVA_XTuner sends the first image only
    assert mmmu.prompt(mc) == "\n Which is larger, \n or this?\nA. left\nB. right" + EN
    assert mmmu.image_limit == 1


# (options, reply, letter, score) for target A under can_infer, then the MMMU open-question rule
MC_CASES = [
    ({"A": "cat", "B": "dog"}, "A", "A", 1.0),
    ({"A": "cat", "B": "dog"}, "B\n\nThe animal barks.", "B", 0.0),  # one letter among the words
    ({"A": "cat", "B": "dog"}, "It is a cat", "A", 1.0),  # no capital letter word; the text "cat"
    ({"A": "cat", "B": "dog"}, "A or B", None, 0.0),  # two letters, no single option text: unparsed
]


@pytest.mark.parametrize(("options", "reply", "letter", "score"), MC_CASES)
def test_multiple_choice_is_can_infer(
    options: dict[str, str], reply: str, letter: str | None, score: float
) -> None:
    task = get_task("seed_image")
    record = make_prediction(task, task.variant("vlmevalkit"), VLM, sample("Q?", options), "", reply)
    assert (record.answer, record.score) == (letter, score)


OPEN = [  # gold "3": option A is "3", B "Other Answers"
    ("3", "3", 1.0, "the gold text itself"),
    ("The total is 13.", "3", 1.0, '"3" is inside "13": VLMEvalKit counts it right'),
    ("A", "3", 1.0, "a lone A word"),
    ("B", "B", 0.0, "a lone B word: Other Answers"),
    ("four", None, 0.0, "neither a letter nor the text: unparsed"),
]


@pytest.mark.parametrize(("reply", "answer", "score", "why"), OPEN)
def test_mmmu_open_questions_as_vlmevalkit_reads_them(
    reply: str, answer: str | None, score: float, why: str
) -> None:
    task = get_task("mmmu_val")
    s = Sample("validation_Math_1", (), "How many?", "3", {"options": {}, "question_type": "open"})
    record = make_prediction(task, task.variant("vlmevalkit"), VLM, s, "", reply)
    assert (record.answer, record.score) == (answer, score), why


YES_NO = [
    ("Yes", "yes"),
    ("No.", "no"),
    ("yes, it is", "yes"),
    ("Yes, there is no dog", None),
    ("Maybe", None),
]


@pytest.mark.parametrize(("reply", "label"), YES_NO)
def test_yes_no_is_yorn_extraction(reply: str, label: str | None) -> None:
    task = get_task("pope")
    s = Sample("random/1", (), "Is there a dog?", "yes", {"category": "random"})
    assert make_prediction(task, task.variant("vlmevalkit"), VLM, s, "", reply).answer == label


VQA = [
    # always normalised on both sides: ten identical "Yes" still match a lower-case "yes" (the official
    # evaluation would compare the raw strings and give 0)
    ("yes", ten(("Yes", 10)), 1.0),
    # "Two dogs." -> "2 dogs"; 3 annotators said "two dogs": 3 see 2 -> 2/3, 7 see 3 -> 1: (2 + 7) / 10
    ("Two dogs.", ten(("two dogs", 3), ("2", 7)), 0.9),
    # the official comma rule: "1,000" -> "1000" only between digits
    ("1,000", ten(("1000", 10)), 1.0),
]


@pytest.mark.parametrize(("reply", "answers", "score"), VQA)
def test_vqa_score(reply: str, answers: list[str], score: float) -> None:
    assert vqa_vlmeval(reply, answers)[1] == pytest.approx(score)


def test_gqa_is_exact_after_strip_and_lower() -> None:
    task = get_task("gqa")
    s = Sample("1", (), "Is it red?", "yes", {"structural": "verify"})
    v = task.variant("vlmevalkit")
    assert make_prediction(task, v, VLM, s, "", " Yes ").score == 1.0
    assert make_prediction(task, v, VLM, s, "", "Yes.").score == 0.0  # no punctuation stripping


def _pope(i: int, split: str, answer: str | None, target: str) -> Prediction:
    meta = {"target": target, "category": split}
    return Prediction(
        id=f"{split}/{i}", prompt="", output="x", answer=answer, score=0.0, parse="x", meta=meta
    )


def test_pope_pools_the_splits_and_counts_unknown_as_no() -> None:
    # pooled: yes/yes, yes/no, Unknown/yes, no/no -> tp 1, fp 1, fn 1 (the Unknown), tn 1
    # precision 1/2, recall 1/2, F1 1/2 -> 50; without Unknown-as-no (lmms-eval) recall would be 1/1
    records = [_pope(1, "random", "yes", "yes"), _pope(2, "popular", "yes", "no"),
               _pope(3, "adversarial", None, "yes"), _pope(4, "random", "no", "no")]  # fmt: skip
    metrics = get_task("pope").aggregate_for("vlmevalkit")(records)
    assert metrics["all_f1"] == 50.0 and metrics["unparsed"] == 1
    assert get_task("pope").primary_for("vlmevalkit") == "all_f1"
    assert get_task("pope").aggregate_for("lmms-eval")(records)["all_recall"] == 100.0


def _hb(i: int, category: str, figure: str, right: bool) -> Prediction:
    meta = {"target": "yes", "category": category, "subcategory": "ocr", "set_id": "0", "figure_id": figure,
            "question_id": str(i)}  # fmt: skip
    return Prediction(id=str(i), prompt="", output="", answer="yes", score=float(right), parse="x", meta=meta)


def test_hallusionbench_groups_figures_without_the_category() -> None:
    # a VD and a VS question share subcategory, set and figure ids: VLMEvalKit's key merges them into one
    # figure (wrong as a whole), evalkit's other protocols keep two (one right)
    records = [_hb(1, "VD", "0", True), _hb(2, "VS", "0", False)]
    assert get_task("hallusionbench").aggregate_for("vlmevalkit")(records)["facc"] == 0.0
    assert get_task("hallusionbench").aggregate_for("llava")(records)["facc"] == 50.0


def test_mme_through_the_cli_with_five_new_tokens(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)
    with FakeOpenAIServer(lambda body: colour_reply(body) + ", it is.") as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "mme", "--protocol", "vlmevalkit"))
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    assert {b["max_tokens"] for b in bodies} == {5}
    texts = {m["content"][-1]["text"] for b in bodies for m in b["messages"] if m["role"] == "user"}
    assert all(t.endswith(" Please answer yes or no.") for t in texts)  # the question as stored
    record = json.loads((tmp_path / "out" / "tiny-test" / "mme" / "metrics.json").read_text())
    assert record["protocol"] == "vlmevalkit" and record["metrics"]["perception"] == 800.0
