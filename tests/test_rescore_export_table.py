"""Re-scoring, the MME export and tables, checked against independent implementations of the official
algorithms (MME's calculation tool reading our export; LLaVA's eval_pope over its own answer layout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score

from tests.support.fixtures import write_mme, write_pope
from tests.support.openai_server import FakeOpenAIServer, last_user_text
from tests.test_e2e_openai import evalkit, load_jsonl, run_args, seen_colour

# Replies that exercise the parsers: right, wrong, hedged, unparseable, with stray whitespace.
VARIANTS = {
    "red": ("Yes, it is.", "No"),
    "blue": ("yes", "There is no such colour"),
    "green": ("  Yes", "Not at all"),
    "yellow": ("Yes", "I cannot tell"),
}


def mixed_reply(body: dict) -> str:
    asked = last_user_text(body).split("Is the image ", 1)[1].split("?", 1)[0]
    right, other = VARIANTS[asked]
    return right if asked == seen_colour(body) else other


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("rescore")
    root = tmp / "data"
    write_mme(root)
    write_pope(root)
    with FakeOpenAIServer(mixed_reply) as server:
        result = evalkit(*run_args(server, root, tmp / "out"))
        assert result.returncode == 0, result.stderr
    return root, tmp / "out" / "tiny-test"


def official_mme_scores(folder: Path) -> dict[str, float]:
    """The MME calculation tool's algorithm, written from its description: consecutive line pairs, lower-case,
    exact yes/no else 'yes'/'no' in the first 4 characters, acc (sklearn) + acc_plus, times 100."""
    scores = {}
    for path in sorted(folder.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        gts, preds, plus = [], [], 0
        for i in range(0, len(lines), 2):
            right = 0
            for line in lines[i : i + 2]:
                _, _, gt, pred = line.split("\t")
                gt, pred = gt.lower(), pred.lower()
                label = (
                    pred
                    if pred in ("yes", "no")
                    else "yes"
                    if "yes" in pred[:4]
                    else "no"
                    if "no" in pred[:4]
                    else "other"
                )
                gts.append(gt)
                preds.append(label)
                right += gt == label
            plus += right == 2
        scores[path.stem.lower()] = 100 * accuracy_score(gts, preds) + 100 * plus / (len(lines) // 2)
    return scores


def test_mme_export_scored_by_the_official_algorithm_matches(
    run_dir: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = run_dir
    result = evalkit("export", "mme", str(run / "mme"), "--out", str(tmp_path / "mme_txt"))
    assert result.returncode == 0, result.stderr
    files = sorted(p.name for p in (tmp_path / "mme_txt").glob("*.txt"))
    assert files == ["OCR.txt", "artwork.txt", "code_reasoning.txt", "count.txt", "existence.txt"]
    line = (tmp_path / "mme_txt" / "count.txt").read_text().splitlines()[1]
    assert line.split("\t")[:3] == ["000000055072.png", "Is the image red?  Please answer yes or no.", "No"]
    metrics = json.loads((run / "mme" / "metrics.json").read_text())["metrics"]
    official = official_mme_scores(tmp_path / "mme_txt")
    assert official  # non-trivial: the replies give a mix of right, wrong and unparsed
    assert metrics["unparsed"] > 0 and metrics["perception"] < 800
    for subtask, value in official.items():
        assert metrics[subtask] == pytest.approx(value, abs=1e-6), subtask


def official_pope(answers: list[dict], labels: list[str]) -> dict[str, float]:
    """LLaVA eval_pope's algorithm from its description: answers and labels aligned by order."""
    preds = []
    for a in answers:
        words = a["text"].split(".")[0].replace(",", "").split(" ")
        preds.append("no" if {"No", "not", "no"} & set(words) else "yes")
    tp = sum(p == "yes" and g == "yes" for p, g in zip(preds, labels, strict=True))
    fp = sum(p == "yes" and g == "no" for p, g in zip(preds, labels, strict=True))
    tn = sum(p == "no" and g == "no" for p, g in zip(preds, labels, strict=True))
    fn = sum(p == "no" and g == "yes" for p, g in zip(preds, labels, strict=True))
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return {
        "accuracy": 100 * (tp + tn) / len(preds),
        "precision": 100 * precision,
        "recall": 100 * recall,
        "f1": 100 * 2 * precision * recall / (precision + recall),
        "yes_ratio": 100 * preds.count("yes") / len(preds),
    }


def test_llava_answer_files_rescore_to_the_same_metrics(run_dir: tuple[Path, Path], tmp_path: Path) -> None:
    root, run = run_dir
    offsets = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}
    # POPE in LLaVA's layout: global question ids, one answers file
    pope_records = load_jsonl(run / "pope" / "predictions.jsonl")
    answers = [
        {
            "question_id": offsets[r["meta"]["category"]] + int(r["id"].split("/")[1]),
            "prompt": r["prompt"],
            "text": r["output"].strip(),
            "model_id": "x",
        }
        for r in pope_records
    ]
    (tmp_path / "pope.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    result = evalkit(
        "score",
        "--task",
        "pope",
        "--predictions",
        str(tmp_path / "pope.jsonl"),
        "--data-root",
        str(root),
        "--output",
        str(tmp_path / "pope_scores"),
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "pope_scores" / "metrics.json").read_text())["metrics"]
    ours = json.loads((run / "pope" / "metrics.json").read_text())["metrics"]
    assert scores == ours
    for split in ("adversarial", "popular", "random"):
        labels = [
            json.loads(x)["label"]
            for x in (root / "pope" / f"coco_pope_{split}.json").read_text().splitlines()
        ]
        ordered = sorted(
            (a for a in answers if offsets[split] < a["question_id"] <= offsets[split] + 9_999_999),
            key=lambda a: a["question_id"],
        )
        for key, value in official_pope(ordered, labels).items():
            assert ours[f"{split}_{key}"] == pytest.approx(value, abs=1e-6), (split, key)

    # MME in LLaVA's layout: question_id is the image path, shared by the pair; the prompt tells them apart
    mme_records = load_jsonl(run / "mme" / "predictions.jsonl")
    answers = [
        {"question_id": r["meta"]["image_id"], "prompt": r["prompt"], "text": r["output"].strip()}
        for r in mme_records
    ]
    (tmp_path / "mme.jsonl").write_text("".join(json.dumps(a) + "\n" for a in answers))
    result = evalkit(
        "score",
        "--task",
        "mme",
        "--predictions",
        str(tmp_path / "mme.jsonl"),
        "--data-root",
        str(root),
        "--output",
        str(tmp_path / "mme_scores"),
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads((tmp_path / "mme_scores" / "metrics.json").read_text())["metrics"]
    assert scores == json.loads((run / "mme" / "metrics.json").read_text())["metrics"]


def test_rescore_own_records_under_another_protocol(run_dir: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = run_dir
    result = evalkit(
        "score",
        "--task",
        "pope",
        "--predictions",
        str(run / "pope" / "predictions.jsonl"),
        "--protocol",
        "lmms-eval",
        "--output",
        str(tmp_path / "s"),
    )
    assert result.returncode == 0, result.stderr
    rescored = load_jsonl(tmp_path / "s" / "predictions.jsonl")
    by_output = {r["output"]: r for r in rescored}
    # under lmms-eval, "Yes, it is." is not exactly yes: unparsed and wrong; "No" stays a parsed no
    assert by_output["Yes, it is."]["answer"] is None and by_output["Yes, it is."]["parse"] == "unparsed"
    assert by_output["No"]["answer"] == "no"
    metrics = json.loads((tmp_path / "s" / "metrics.json").read_text())["metrics"]
    assert metrics["unparsed"] == sum(r["answer"] is None for r in rescored) > 0


def test_rescore_errors_name_the_line(run_dir: tuple[Path, Path], tmp_path: Path) -> None:
    root, _ = run_dir
    bad = tmp_path / "answers.jsonl"
    bad.write_text('{"question_id": 1, "text": "Yes"}\n{"question_id": 99999, "text": "No"}\n')
    result = evalkit("score", "--task", "pope", "--predictions", str(bad), "--data-root", str(root))
    assert result.returncode == 2 and f"{bad}:2" in result.stderr


def test_table_wide_long_md_csv(run_dir: tuple[Path, Path]) -> None:
    _, run = run_dir
    wide = evalkit("table", str(run.parent))
    assert wide.returncode == 0, wide.stderr
    header, rule, row = wide.stdout.strip().splitlines()
    assert header == "| model | mme (perception) | pope (f1) |" and rule == "|---|---|---|"
    mme = json.loads((run / "mme" / "metrics.json").read_text())["metrics"]["perception"]
    assert row.startswith(f"| tiny-test | {mme:.2f} |")
    csv = evalkit("table", str(run.parent), "--layout", "long", "--format", "csv")
    lines = csv.stdout.strip().splitlines()
    assert lines[0] == "model,task,protocol,metric,value,n,limit"  # limit: empty unless a --limit run
    assert any(line.startswith("tiny-test,pope,llava,random_f1,") for line in lines)
    empty = evalkit("table", str(run.parent / "nowhere"))
    assert empty.returncode == 2 and "no <model>/<task>/metrics.json" in empty.stderr
