"""Protocol-wide reply handling: stripping, reasoning blocks (lmms-eval 0.7.3's `api/reasoning.py` rules on
hand-worked cases), the opt-in flag, what metrics.json records, and `evalkit show protocol`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.protocols import PROTOCOLS, REASONING_TAGS, strip_reasoning
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures import write_mme
from tests.support.fixtures_hf_mc import write_mmmu
from tests.support.fixtures_mc import write_qbench
from tests.support.fixtures_mmbench import write_cn_dev, write_en_dev
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e_openai import colour_reply, evalkit, load_jsonl, run_args

# (reply, what lmms-eval's strip_reasoning_tags returns with its default tags, why)
REASONING = [
    ("<think>abc</think>  B ", "B", "a block, then the answer: block removed, outer space stripped"),
    ("<think>unclosed B", "<think>unclosed B", "no closing tag: kept as it is"),
    ("<think>only</think>", "", "nothing but a block"),
    ("a<think>x</think>b<think>y</think>c", "abc", "every block, joined without a space"),
    ("<think>a<think>b</think>c</think>d", "d", "nested: first open to first close, then the orphan close"),
    ("reasoning</think> A", "A", "a template pre-filled <think>: keep what follows the last close"),
    ("x</think>y</think> Z", "Z", "after the last closing tag"),
    ("<THINK>x</THINK> A", "<THINK>x</THINK> A", "tags are case-sensitive"),
    ("</think>pre <think>post", "</think>pre <think>post", "a close before the open: nothing to cut"),
    ("<thinking>t</thinking> A", "<thinking>t</thinking> A", "<thinking> is no default tag"),
    ("<analysis>long</analysis>\nC", "C", "the second default pair"),
    ("  plain  ", "plain", "always stripped"),
]


@pytest.mark.parametrize(("reply", "expected", "why"), REASONING, ids=[r[0] for r in REASONING])
def test_reasoning_blocks_as_lmms_eval_removes_them(reply: str, expected: str, why: str) -> None:
    assert strip_reasoning(reply, REASONING_TAGS) == expected, why


def test_protocol_reply_processing() -> None:
    llava, lmms = PROTOCOLS["llava"], PROTOCOLS["lmms-eval"]
    assert llava.process(" <think>B</think> A\n") == "<think>B</think> A"  # stripped, block kept
    assert lmms.process(" <think>B</think> A\n") == "A"
    assert llava.with_reasoning(True).process("<think>B</think> A") == "A"
    assert lmms.with_reasoning(False).process("<think>B</think> A") == "<think>B</think> A"
    assert lmms.with_reasoning(None) is lmms
    assert lmms.output_settings() == {
        "strip": True,
        "reasoning_tags": [["<think>", "</think>"], ["<analysis>", "</analysis>"]],
    }


# lmms-eval strips every reply before process_results: a letter with whitespace around it reads as the
# letter in every multiple-choice task under lmms-eval (AI2D has its own test)
@pytest.mark.parametrize("reply", [" A\n", "A\n", "\nA", "<think>B? no</think>\nA"])
def test_lmms_eval_reads_padded_letters(reply: str, tmp_path: Path) -> None:
    write_mmmu(tmp_path)
    write_qbench(tmp_path)
    for name in ("mmmu_val", "qbench_dev"):
        task = get_task(name)
        sample = next(
            s for s in task.load(tmp_path / task.folder).samples if s.meta.get("options") and s.target == "A"
        )
        record = make_prediction(task, task.variant("lmms-eval"), PROTOCOLS["lmms-eval"], sample, "", reply)
        assert (record.answer, record.score) == ("A", 1.0), name


def _hinted(tmp_path: Path, hint: object, task: str) -> str:
    """The lmms-eval prompt of an MMBench question whose hint is `hint`."""
    from dataclasses import replace

    t = get_task(task)
    sample = next(s for s in t.load(tmp_path / "mmbench").samples if s.meta["pass"] == 0)
    return t.variant("lmms-eval").prompt(replace(sample, meta=sample.meta | {"hint": hint}))


def test_mmbench_hint_empty_string_none_and_nan(tmp_path: Path) -> None:
    write_en_dev(tmp_path)
    write_cn_dev(tmp_path)
    en_none = _hinted(tmp_path, None, "mmbench_en_dev")
    question = en_none.split(" There are several options:")[0]
    # lmms-eval: f"{hint} {question} {options}" when pd.notna(hint) (and, EN, hint != "nan")
    assert _hinted(tmp_path, "", "mmbench_en_dev") == " " + en_none  # "" is not NA: a leading space
    assert _hinted(tmp_path, "nan", "mmbench_en_dev") == en_none  # EN drops the string "nan"
    assert _hinted(tmp_path, "Look.", "mmbench_en_dev") == "Look. " + en_none
    assert en_none.startswith(question + " There are several options:\nA. ")
    cn_none = _hinted(tmp_path, None, "mmbench_cn_dev")
    assert _hinted(tmp_path, "", "mmbench_cn_dev") == " " + cn_none
    assert _hinted(tmp_path, "nan", "mmbench_cn_dev") == "nan " + cn_none  # CN keeps it (pd.notna only)
    # LLaVA reads the TSV with pandas: an empty or "nan" hint is missing there, no hint line
    llava = get_task("mmbench_en_dev").variant("llava")
    sample = next(
        s for s in get_task("mmbench_en_dev").load(tmp_path / "mmbench").samples if s.meta["pass"] == 0
    )
    from dataclasses import replace

    for hint in (None, "", "nan"):
        assert llava.prompt(replace(sample, meta=sample.meta | {"hint": hint})).startswith(question)


def test_strip_reasoning_is_recorded_and_applied_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mme(root)

    def thinking(body: dict) -> str:
        return "<think>Is it? No... wait, yes.</think>\n" + colour_reply(body)

    with FakeOpenAIServer(thinking) as server:
        plain = evalkit(*run_args(server, root, tmp_path / "out", "mme", "--name", "plain"))
        stripped = evalkit(
            *run_args(server, root, tmp_path / "out", "mme", "--name", "s", "--strip-reasoning")
        )
    assert plain.returncode == 0 and stripped.returncode == 0, plain.stderr + stripped.stderr
    plain_m = json.loads((tmp_path / "out" / "plain" / "mme" / "metrics.json").read_text())
    strip_m = json.loads((tmp_path / "out" / "s" / "mme" / "metrics.json").read_text())
    assert plain_m["replies"] == {"strip": True, "reasoning_tags": []}
    assert strip_m["replies"]["reasoning_tags"] == [["<think>", "</think>"], ["<analysis>", "</analysis>"]]
    # MME's rule reads the first 4 characters: "<thi" is no answer; without the block, "Yes"/"No" are
    assert plain_m["metrics"]["unparsed"] == 14 and strip_m["metrics"]["unparsed"] == 0
    assert strip_m["metrics"]["perception"] == 800.0
    records = load_jsonl(tmp_path / "out" / "s" / "mme" / "predictions.jsonl")
    assert all(r["output"].startswith("<think>") for r in records)  # the record keeps the raw reply
    plain_records = tmp_path / "out" / "plain" / "mme" / "predictions.jsonl"
    rescored = evalkit(
        "score", "--task", "mme", "--predictions", str(plain_records), "--strip-reasoning",
        "--output", str(tmp_path / "re"),
    )  # fmt: skip
    assert rescored.returncode == 0, rescored.stderr
    assert json.loads((tmp_path / "re" / "metrics.json").read_text())["metrics"]["unparsed"] == 0


def test_show_protocol_names_its_departures() -> None:
    lmms = evalkit("show", "protocol", "lmms-eval")
    llava = evalkit("show", "protocol", "llava")
    assert lmms.returncode == llava.returncode == 0
    assert "reasoning blocks removed: <think>...</think>, <analysis>...</analysis>" in lmms.stdout
    assert "reasoning blocks removed: none" in llava.stdout
    for text in (lmms.stdout, llava.stdout):
        assert "where this protocol departs from its reference" in text and "never guesses" in text
    assert "yes_ratio is the share of predicted yes" in lmms.stdout  # POPE
    assert "MMStar's own rule" in lmms.stdout and "GPT judge" in lmms.stdout  # MMStar, MMBench
    assert "8-bit" in llava.stdout  # Q-Bench
