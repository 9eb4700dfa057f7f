"""MMMU test: the test parquet files with MMMU's released answer file (or a filled answer column) score as
validation does, worked by hand; without answers the run only counts and `export mmmu` writes the answer
file MMMU's server took; answers for some questions only are refused; lmms-eval's own test prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.records import Prediction
from evalkit.registry import get_task, task_groups
from evalkit.reports.exports import export_mmmu
from evalkit.runner import make_prediction
from tests.support.fixtures_published import MMMU_TEST, answer_dict, write_mmmu_test
from tests.support.openai_server import FakeOpenAIServer, last_user_text
from tests.tasks.test_mmbench import write_run
from tests.test_e2e_openai import evalkit, load_jsonl, run_args

TEST, VAL = get_task("mmmu_test"), get_task("mmmu_val")
MC = "\nAnswer with the option's letter from the given choices directly."
IDS = ["test_Accounting_1", "test_Accounting_2", "test_Art_Theory_1", "test_Art_Theory_2", "test_Math_1",
       "test_Math_2"]  # fmt: skip  # the data's order: subject folders by name
# a reply per question: right, except Art_Theory_2, which no rule reads (wrong, never a random guess)
REPLIES = {
    "test_Art_Theory_1": "(B) The blue one",
    "test_Art_Theory_2": "I don't know",
    "test_Accounting_1": "The revenue is $1,000.",
    "test_Accounting_2": "A",
    "test_Math_1": "x = 3.5",
    "test_Math_2": "24/7",
}


def load(root: Path) -> dict[str, Sample]:
    return {s.id: s for s in TEST.load(root / "mmmu").samples}


def predict(sample: Sample, output: str, protocol: str = "llava") -> Prediction:
    variant = TEST.variant(protocol)
    return make_prediction(TEST, variant, PROTOCOLS[protocol], sample, variant.prompt(sample), output)


def test_reads_test_files_with_the_released_answer_file(tmp_path: Path) -> None:
    dataset = TEST.load(write_mmmu_test(tmp_path))
    samples = {s.id: s for s in dataset.samples}
    assert list(samples) == IDS  # validation and dev files beside them are not read
    assert {i: s.target for i, s in samples.items()} == {
        "test_Accounting_1": "1,000", "test_Accounting_2": "A", "test_Art_Theory_1": "B",
        "test_Art_Theory_2": "D", "test_Math_1": "3.50", "test_Math_2": "['24/7', 'always']",
    }  # fmt: skip
    assert samples["test_Math_2"].meta["answer_list"] == ["24/7", "always"]
    assert samples["test_Art_Theory_1"].meta["discipline"] == "Art and Design"
    without = TEST.load(write_mmmu_test(tmp_path / "none", answers="none"))
    assert without.fingerprint != dataset.fingerprint  # the answer file is part of what was read
    assert task_groups()["mmmu"] == ("mmmu_val", "mmmu_test")


def test_a_filled_answer_column_reads_the_same(tmp_path: Path) -> None:
    from_file = load(write_mmmu_test(tmp_path / "file").parent)
    from_column = load(write_mmmu_test(tmp_path / "column", answers="parquet").parent)

    def scoring(sample: Sample) -> tuple[object, ...]:
        return sample.id, sample.question, sample.target, sample.meta, len(sample.images)  # meta: answer_list

    assert list(from_column) == list(from_file) == IDS
    assert [scoring(s) for s in from_column.values()] == [scoring(s) for s in from_file.values()]
    assert from_column["test_Math_2"].meta["answer_list"] == ["24/7", "always"]  # the column's literal list
    for protocol in ("llava", "lmms-eval", "vlmevalkit"):
        scores = [[predict(s[i], REPLIES[i], protocol).score for i in IDS] for s in (from_file, from_column)]
        assert scores[0] == scores[1], protocol
    # lmms-eval: "24/7" is one of the released golds, from the file or the column alike
    assert predict(from_column["test_Math_2"], "24/7", "lmms-eval").score == 1.0


def test_published_answers_score_as_validation_by_hand(tmp_path: Path) -> None:
    samples = load(write_mmmu_test(tmp_path).parent)
    predictions = [predict(samples[i], REPLIES[i]) for i in IDS]
    assert TEST.aggregate_for("llava")(predictions) == pytest.approx({
        "accuracy": 500 / 6,  # 5 of 6: Art_Theory_2 unparsed
        "art_and_design": 50.0,  # Art_Theory 1 of 2
        "business": 100.0,  # "$1,000" is the number 1000 = "1,000"; "A"
        "science": 100.0,  # 3.5 = 3.50 (2-decimal floats); "24/7" is one of the list's answers
        "accounting": 100.0,
        "art_theory": 50.0,
        "math": 100.0,
        "published_answers": 6,
        "unparsed": 1,
        "failed": 0,
    })  # fmt: skip
    assert TEST.primary == "accuracy"


def test_without_answers_only_counts(tmp_path: Path) -> None:
    samples = load(write_mmmu_test(tmp_path, answers="none").parent)
    assert not any(s.target for s in samples.values())
    for protocol in ("llava", "lmms-eval", "vlmevalkit"):
        predictions = [predict(samples[i], REPLIES[i], protocol) for i in IDS]
        # an open question has no gold: the empty string would be "in" any reply, yet nothing scores
        assert all(p.score == 0.0 for p in predictions), protocol
        assert TEST.aggregate_for(protocol)(predictions) == {"answered": 5, "unparsed": 1, "failed": 0}


@pytest.mark.parametrize(
    ("answers", "drop", "message"),
    [
        ("file", "test_Math_1", r"Math/test-00000-of-00001\.parquet: row 1 \(test_Math_1\): no answer, "
         r"while 5 of the 6 rows of MMMU test \(.*answer_dict_test\.json\) have one"),
        ("parquet", "test_Accounting_2", r"Accounting/test-00000-of-00001\.parquet: row 2 "
         r"\(test_Accounting_2\): no answer, while 5 of the 6 rows of MMMU test \(answer column of"),
    ],
)  # fmt: skip
def test_answers_for_some_questions_only_are_refused(
    tmp_path: Path, answers: str, drop: str, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        TEST.load(write_mmmu_test(tmp_path, answers=answers, drop=drop))  # type: ignore[arg-type]


def test_answer_file_problems_are_named(tmp_path: Path) -> None:
    folder = write_mmmu_test(tmp_path, answers="parquet")
    golds = {item.id: gold for item, gold in MMMU_TEST} | {"test_Accounting_2": "C"}  # the column says A
    (folder / "answer_dict_test.json").write_text(json.dumps(answer_dict(golds)))
    with pytest.raises(InputError, match=r"Accounting/test-00000-of-00001\.parquet: row 2: answer 'A', but "
                       r"answer_dict_test\.json gives 'C'"):  # fmt: skip
        TEST.load(folder)
    # lists compare too: the column's "['24/7', 'always']" is not the file's ["24/7"]
    golds = {item.id: gold for item, gold in MMMU_TEST} | {"test_Math_2": ["24/7"]}
    (folder / "answer_dict_test.json").write_text(json.dumps(answer_dict(golds)))
    with pytest.raises(InputError, match=r"Math/test-00000-of-00001\.parquet: row 2: answer \['24/7', "
                       r"'always'\], but answer_dict_test\.json gives \['24/7'\]"):  # fmt: skip
        TEST.load(folder)
    golds = {item.id: gold for item, gold in MMMU_TEST} | {"test_Math_2": [" 24/7", "always "]}
    (folder / "answer_dict_test.json").write_text(json.dumps(answer_dict(golds)))
    assert load(folder.parent)["test_Math_2"].meta["answer_list"] == [" 24/7", "always "]  # agree, stripped
    (folder / "answer_dict_test.json").write_text(json.dumps({"test_Math_1": {"question_type": "open"}}))
    with pytest.raises(
        InputError, match=r"answer_dict_test\.json: test_Math_1: missing field\(s\) ground_truth"
    ):
        TEST.load(folder)


def test_lmms_eval_test_prompt_has_no_instruction(tmp_path: Path) -> None:
    samples = load(write_mmmu_test(tmp_path).parent)
    mc, open_ = samples["test_Art_Theory_1"], samples["test_Accounting_1"]
    lmms, llava = TEST.variant("lmms-eval"), TEST.variant("llava")
    # lmms-eval 0.7.3 mmmu_test.yaml sets no prompt kwargs: construct_prompt's empty instruction after "\n\n"
    question = "Compare <image 2> with <image 1>. Which painting is older?"
    assert lmms.prompt(mc) == question + "\nA. The red one\nB. The blue one\nC. Both\n\n"
    assert lmms.prompt(open_) == "<image 1> What is the revenue in dollars?\n\n"
    assert lmms.max_new_tokens == 512 and llava.max_new_tokens == 128
    assert llava.prompt(mc) == question + "\nA. The red one\nB. The blue one\nC. Both" + MC  # as validation


def test_export_is_the_answer_file_mmmu_took(tmp_path: Path) -> None:
    root = tmp_path / "data"
    samples = load(write_mmmu_test(root, answers="none").parent)
    run = tmp_path / "run" / "mmmu_test"
    (run.parent).mkdir()
    write_run(run, [predict(samples[i], "  " + REPLIES[i] + "\n") for i in IDS if i != "test_Math_2"])
    with pytest.raises(InputError, match=r"no manifest\.json or metrics\.json names the task"):
        export_mmmu(run, tmp_path / "sub.json", data_root=root)
    manifest = {"task": "mmmu_test", "task_version": TEST.version, "protocol": "llava", "model": "m"}
    (run / "manifest.json").write_text(json.dumps(manifest | {"generation": {}}))
    with pytest.raises(InputError, match=r"1 of 6 mmmu_test questions have no answer \(1 not run"):
        export_mmmu(run, tmp_path / "sub.json", data_root=root)
    (path,) = export_mmmu(run, tmp_path / "sub.json", data_root=root, allow_missing=True)
    assert json.loads(path.read_text()) == {
        "test_Accounting_1": "The revenue is $1,000.",  # open: the stripped reply (MMMU parses it itself)
        "test_Accounting_2": "A",  # multiple choice: the letter read
        "test_Art_Theory_1": "B",
        "test_Art_Theory_2": "",  # no letter read: empty, wrong on the server, no random guess
        "test_Math_1": "x = 3.5",
        "test_Math_2": "",  # not run (allowed here)
    }
    assert list(json.loads(path.read_text())) == IDS


def mmmu_reply(body: dict) -> str:
    text = last_user_text(body)
    return next(REPLIES[i] for item, _ in MMMU_TEST if item.question in text for i in [item.id])


def test_run_without_answers_then_export_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_mmmu_test(root, answers="none")
    with FakeOpenAIServer(mmmu_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", "mmmu_test"))
        assert result.returncode == 0, result.stderr
    run = tmp_path / "out" / "tiny-test" / "mmmu_test"
    record = json.loads((run / "metrics.json").read_text())
    assert (
        record["metrics"] == {"answered": 5, "unparsed": 1, "failed": 0} and record["primary"] == "accuracy"
    )
    exported = evalkit("export", "mmmu", str(run), "--out", str(tmp_path / "exported"))
    assert exported.returncode == 0, exported.stderr
    answers = json.loads((tmp_path / "exported" / "mmmu_test.json").read_text())
    assert answers == {i: "" if i == "test_Art_Theory_2" else REPLIES[i] for i in IDS} | {
        "test_Art_Theory_1": "B"
    }
    assert len(load_jsonl(run / "predictions.jsonl")) == 6


def test_a_validation_run_exports_the_same_form(tmp_path: Path) -> None:
    """`export mmmu` of an mmmu_val run: the file MMMU's main_eval_only.py checks against answer_dict_val."""
    from tests.support.fixtures_hf_mc import write_mmmu

    root = tmp_path / "data"
    samples = {s.id: s for s in VAL.load(write_mmmu(root)).samples}
    replies = {"validation_Art_Theory_1": "The answer is (B).", "validation_Math_1": " x = 3.5 "}
    variant, llava = VAL.variant("llava"), PROTOCOLS["llava"]
    records = [
        make_prediction(VAL, variant, llava, s, "", replies.get(i, "no idea")) for i, s in samples.items()
    ]
    run = write_run(tmp_path / "run", records)
    manifest = {"task": "mmmu_val", "task_version": VAL.version, "protocol": "llava", "model": "m"}
    (run / "manifest.json").write_text(json.dumps(manifest | {"generation": {}}))
    (path,) = export_mmmu(run, tmp_path / "val.json", data_root=root)
    answers = json.loads(path.read_text())
    assert list(answers) == list(samples) and answers["validation_Art_Theory_1"] == "B"
    assert answers["validation_Math_1"] == "x = 3.5" and answers["validation_Accounting_2"] == ""


def test_an_answer_file_for_no_test_question_is_refused(tmp_path: Path) -> None:
    """The val dict renamed answer_dict_test.json: its ids answer none of the test questions."""
    folder = write_mmmu_test(tmp_path)
    golds = {item.id.replace("test_", "validation_"): gold for item, gold in MMMU_TEST}
    (folder / "answer_dict_test.json").write_text(json.dumps(answer_dict(golds)))
    with pytest.raises(InputError, match=r"answer_dict_test\.json: answers none of the 6 test questions$"):
        TEST.load(folder)
