"""`evalkit demo`: the README's first command, end to end. It proves the image path with three rows over the
bundled samples: the tiny trained model (>= 90), the same model with every image blanked, and the same
architecture untrained (both at chance).

The expected values come from the bundled files, read here as the benchmarks' authors lay them out (MME's
`question<TAB>Yes|No` txt files, POPE's JSON lines), not from evalkit's readers:
- "trained >= 90": MME perception is a sum over subtasks of acc + acc_plus (each out of 100); the bundled
  samples cover some perception subtasks, so the bar is 90% of their maximum (200 each) and every covered
  subtask's acc >= 90. POPE: f1 (primary) and accuracy, both in percent, >= 90.
- "chance": measured as questions answered right, whose chance level is plain: the files ask every MME image
  one yes- and one no-question and every POPE split as many yes- as no-questions (checked below), so a model
  that does not see the image gets 50% of them right in expectation (the primary metrics have no single
  chance value: POPE f1 is 67 for a model that always says yes and 0 for one that always says no).
- blank row: every image is the same mid-grey 32x32 picture, so the greedy reply is a function of the question
  text alone. Such an answerer can score at best the sum over distinct question texts of the larger of their
  yes/no counts, and at worst the sum of the smaller (when it answers yes or no). For the bundled MME both
  bounds are exactly half (each text is asked equally often with either answer).
- untrained row: random weights, replies unrelated to the answers: right <= n/2 + 3 sigma (binomial,
  sigma = sqrt(n)/2) over all n questions; over the k replies that parse as yes/no, within k/2 +- 3 sigma. A
  reply that is not yes/no is wrong by the official rules, so an untrained model may sit below chance.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from PIL import Image

from evalkit.demo.samples import DATA
from tests.test_e2e_openai import evalkit, load_jsonl

PERCEPTION = {"existence", "count", "position", "color", "posters", "celebrity", "scene", "landmark",
              "artwork", "ocr"}  # fmt: skip  # MME's perception subtasks (BENCHMARKS.md)
ROWS = ("tiny-llava", "tiny-llava+blank", "tiny-llava-untrained")


def mme_questions() -> list[tuple[str, str, str]]:
    """(subtask, question, yes|no) from the release's txt files."""
    release = DATA / "mme" / "MME_Benchmark_release_version"
    found = []
    for txt in sorted(release.glob("*/**/*.txt")):
        subtask = txt.relative_to(release).parts[0].lower()
        for line in txt.read_text(encoding="utf-8").splitlines():
            if line.strip():
                question, answer = line.split("\t")
                found.append((subtask, question, answer.strip().lower()))
    return found


def pope_questions() -> list[tuple[str, str, str]]:
    """(split, question, yes|no) from the coco_pope_<split>.json files."""
    found = []
    for path in sorted((DATA / "pope").glob("coco_pope_*.json")):
        split = path.stem.removeprefix("coco_pope_")
        found += [(split, r["text"], r["label"]) for r in map(json.loads, path.read_text().splitlines())]
    return found


def blind_bounds(questions: list[tuple[str, str, str]]) -> tuple[int, int]:
    """The fewest and most questions an answerer that sees only the question text (and says yes or no) gets
    right: per distinct text, the smaller and the larger of its yes/no counts."""
    by_text: dict[str, Counter[str]] = defaultdict(Counter)
    for _, text, label in questions:
        by_text[text][label] += 1
    return sum(min(c["yes"], c["no"]) for c in by_text.values()), sum(
        max(c["yes"], c["no"]) for c in by_text.values()
    )


def three_sigma(n: int) -> float:
    return 3 * math.sqrt(n) / 2  # binomial n, p = 1/2


def test_bundled_samples_are_balanced_so_chance_is_half() -> None:
    mme, pope = mme_questions(), pope_questions()
    assert len(mme) == 24 and len(pope) == 18
    per_image: dict[str, list[str]] = defaultdict(list)
    for path in sorted((DATA / "mme").rglob("*.txt")):
        per_image[path.stem] = sorted(line.split("\t")[1].strip() for line in path.read_text().splitlines())
    assert set(map(tuple, per_image.values())) == {("No", "Yes")}  # one yes- and one no-question per image
    for split in {s for s, _, _ in pope}:
        labels = Counter(label for s, _, label in pope if s == split)
        assert labels["yes"] == labels["no"], split
    assert blind_bounds(mme) == (12, 12)  # every MME question text: as often yes as no
    images = [*(DATA / "mme").rglob("*.jpg"), *(DATA / "mme").rglob("*.png"), *(DATA / "coco").rglob("*.jpg")]
    sizes = set()
    for path in images:
        with Image.open(path) as img:
            sizes.add(img.size)
    assert sizes == {(32, 32)}  # so every blank image is the same picture


def _run(out: Path, row: str, task: str) -> tuple[dict, list[dict], dict]:
    folder = out / "results" / row / task
    metrics = json.loads((folder / "metrics.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    return metrics, load_jsonl(folder / "predictions.jsonl"), manifest


@pytest.mark.slow
def test_demo_three_rows_prove_the_model_sees_the_images(tmp_path: Path) -> None:
    result = evalkit("demo", "--output", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stderr
    for row in ROWS:
        assert f"| {row} |" in result.stdout
    questions = {"mme": mme_questions(), "pope": pope_questions()}
    runs = {(row, task): _run(tmp_path, row, task) for row in ROWS for task in questions}
    right = {key: sum(r["score"] >= 1 for r in records) for key, (_, records, _) in runs.items()}
    for (row, task), (metrics, records, _) in runs.items():
        assert metrics["n"] == len(records) == len(questions[task]), (row, task)
        assert metrics["data"]["format"] == "authors" and metrics["protocol"] == "llava"

    # trained: >= 90 on the primary metrics
    mme, pope = runs["tiny-llava", "mme"][0]["metrics"], runs["tiny-llava", "pope"][0]["metrics"]
    covered = {s for s, _, _ in questions["mme"]} & PERCEPTION
    assert covered == {"color", "artwork"}
    assert mme["perception"] >= 0.9 * 200 * len(covered)
    assert all(mme[f"{s}_acc"] >= 90 for s in covered)
    assert pope["f1"] >= 90 and pope["accuracy"] >= 90

    # blank images: the same model answers yes/no from the question text alone
    for task, asked in questions.items():
        metrics, _, manifest = runs["tiny-llava+blank", task]
        assert metrics["metrics"]["unparsed"] == 0, task
        low, high = blind_bounds(asked)
        assert low <= right["tiny-llava+blank", task] <= high, (task, right["tiny-llava+blank", task])
        assert (
            manifest["generation"]["blank_images"] is True and metrics["generation"]["blank_images"] is True
        )
        assert right["tiny-llava", task] > high  # the trained model beats anything blind

    # untrained: no better than chance
    for task, asked in questions.items():
        metrics, _, _ = runs["tiny-llava-untrained", task]
        n, k = len(asked), len(asked) - int(metrics["metrics"]["unparsed"])
        got = right["tiny-llava-untrained", task]
        assert got <= n / 2 + three_sigma(n), (task, got)
        assert k == 0 or abs(got - k / 2) <= three_sigma(k), (task, got, k)

    for row in ("tiny-llava", "tiny-llava-untrained"):  # the normal rows say nothing of blank images
        assert "blank_images" not in runs[row, "mme"][2]["generation"]

    # the sweep's tables: three rows each; the zoo layout fills MME-perception and shows "-" elsewhere
    tables = tmp_path / "results" / "tables"
    wide = (tables / "wide.md").read_text().splitlines()
    assert [line.split(" | ")[0].lstrip("| ") for line in wide[2:] if line.startswith("|")] == list(ROWS)
    zoo = (tables / "zoo.md").read_text().splitlines()
    header = [c.strip() for c in zoo[0].strip("|").split("|")]
    cells = {
        row: [c.strip() for c in line.strip("|").split("|")]
        for row in ROWS
        for line in zoo
        if f"| {row} |" in line
    }
    perception = header.index("MME-perception")
    assert cells["tiny-llava"][perception] == f"{mme['perception']:.1f}"
    assert all(cells[row][header.index("LLaVA-Bench-Wild")] == "-" for row in ROWS)
    report = (tmp_path / "report.html").read_text()
    assert report.lstrip().lower().startswith("<!doctype html") and all(row in report for row in ROWS)

    # a blank run resuming into the normal row's folder is refused, naming the pinned key
    refused = evalkit(
        "run", "--model", str(tmp_path / "tiny-llava"), "--tasks", "pope", "--data-root", str(DATA),
        "--output", str(tmp_path / "results"), "--name", "tiny-llava", "--blank-images",
    )  # fmt: skip
    assert refused.returncode == 2
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "generation.blank_images" in lines[0], refused.stderr

    before = {key: records for key, (_, records, _) in runs.items()}
    again = evalkit("demo", "--output", str(tmp_path), timeout=600)  # reuses models and finished records
    assert again.returncode == 0 and "building" not in again.stdout
    assert before == {key: _run(tmp_path, *key)[1] for key in runs}
