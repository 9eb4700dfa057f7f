"""Model-zoo tables as the seed cards print them, with the published numbers beside ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.reports.zoo import OUTSIDE_NOTE, outside
from tests.support.fixtures import write_mme
from tests.test_e2e_openai import evalkit

ZOO_HEADER = (
    "| Name | LLM | Checkpoint | LLaVA-Bench-Wild | MME-perception | MME-cognition | MMBench | MMBench-CN | "
    "SEED-image | MM-Vet | QBench | SQA-image | VQA-v2 | VizWiz | GQA | TextVQA |"
)  # the ShareGPT4V card's header (../shared/seeds), verbatim


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A model answering "Yes" to everything, as the config `sharegpt4v-7b`, on the MME fixture, under
    protocols llava (the zoo's), lmms-eval (another column's meaning: left out) and vlmevalkit (xtuner's)."""
    root = tmp_path_factory.mktemp("zoo")
    write_mme(root / "data")
    replies = root / "yes.json"
    replies.write_text(json.dumps({"replies": {}, "default": "Yes"}))
    configs = root / "cfg" / "models"
    configs.mkdir(parents=True)
    (configs / "sharegpt4v-7b.yaml").write_text(
        f"backend: scripted\nmodel: {replies}\ndisplay_name: ShareGPT4V-7B\nllm: Vicuna-7B\n"
        "published: sharegpt4v-7b\n"
    )
    (configs / "llava-v1.5-7b.yaml").write_text(
        f"backend: scripted\nmodel: {replies}\ndisplay_name: LLaVA-v1.5-7B\npublished: llava-v1.5-7b\n"
    )
    env = {"EVALKIT_CONFIGS": str(root / "cfg")}
    for model, protocol in (
        ("sharegpt4v-7b", "llava"),
        ("sharegpt4v-7b", "lmms-eval"),
        ("llava-v1.5-7b", "vlmevalkit"),
    ):
        name = model if protocol != "lmms-eval" else f"{model}@lmms-eval"
        args = ["run", "--model", model, "--tasks", "mme", "--protocol", protocol, "--name", name]
        result = evalkit(*args, "--data-root", str(root / "data"), "--output", str(root / "out"), env=env)
        assert result.returncode == 0, result.stderr
    return root / "out", env


def _table(results: tuple[Path, dict[str, str]], *args: str) -> list[str]:
    out, env = results
    result = evalkit("table", str(out), *args, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_zoo_layout_is_the_cards_table(results: tuple[Path, dict[str, str]]) -> None:
    # "Yes" to every MME pair (one yes, one no each): accuracy 50, accuracy+ 0, so 50 per subtask; the
    # fixture's perception subtasks are existence, count, artwork, OCR (4 x 50), cognition code_reasoning
    lines = _table(results, "--layout", "zoo")
    assert lines[0] == ZOO_HEADER and len(lines) == 3  # header, rule, one row: lmms-eval's run left out
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[:2] == ["ShareGPT4V-7B", "Vicuna-7B"]
    assert cells[3:] == ["-", "200.0", "50.0", *["-"] * 10]  # tasks not run are "-", never 0


def test_compare_published_puts_the_cards_numbers_beside(results: tuple[Path, dict[str, str]]) -> None:
    cells = [
        c.strip()
        for c in _table(results, "--layout", "zoo", "--compare", "published")[2].strip("|").split("|")
    ]
    # ShareGPT4V-7B's card row; every resample of the all-"Yes" run gives 200 and 50 (each pair: one of two
    # right, never both), so the intervals are [200, 200] and [50, 50] and the card's numbers lie outside
    assert cells[4:6] == ["200.0 (1567.4, -1367.4*)", "50.0 (376.4, -326.4*)"]
    assert cells[3] == "- (72.6)"  # no result of ours: "-", the published value beside it, no difference
    lines = _table(results, "--layout", "zoo", "--compare", "published")
    assert lines[3:] == ["", OUTSIDE_NOTE]
    xtuner = _table(results, "--layout", "xtuner", "--compare", "published")
    assert xtuner[0].startswith("| Model | MMBench Test (EN) | MMBench Test (CN) | CCBench Dev | MMMU  Val |")
    row = [c.strip() for c in xtuner[2].strip("|").split("|")]
    assert row[0] == "LLaVA-v1.5-7B" and row[12] == "200/50 (1511/348)"  # MME as the card's "P/C"
    assert len(xtuner) == 3  # two numbers as one text: nothing to mark, no note


def test_compare_marks_only_a_published_value_outside_our_interval(
    results: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """metrics.json as a run writes it, with other numbers: perception 1560 in [1540, 1580] (the card's
    1567.4 inside), cognition 300 in [290, 310] (376.4 outside)."""
    out, env = results
    folder = tmp_path / "results" / "sharegpt4v-7b" / "mme"
    folder.mkdir(parents=True)
    record = json.loads((out / "sharegpt4v-7b" / "mme" / "metrics.json").read_text())
    record["metrics"] |= {"perception": 1560.0, "cognition": 300.0}
    record["ci95"] |= {"perception": [1540.0, 1580.0], "cognition": [290.0, 310.0]}
    (folder / "metrics.json").write_text(json.dumps(record))
    lines = _table((tmp_path / "results", env), "--layout", "zoo", "--compare", "published")
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[4:6] == ["1560.0 (1567.4, -7.4)", "300.0 (376.4, -76.4*)"] and lines[-1] == OUTSIDE_NOTE
    record["ci95"] = {}  # a metrics.json from before intervals: nothing marked, no note
    (folder / "metrics.json").write_text(json.dumps(record))
    lines = _table((tmp_path / "results", env), "--layout", "zoo", "--compare", "published")
    assert "300.0 (376.4, -76.4)" in lines[2] and len(lines) == 3


def test_a_published_value_is_outside_only_beyond_its_own_rounding() -> None:
    # 1567.4 as printed stands for anything from 1567.35 to 1567.45
    assert not outside(1567.4, (1540.0, 1567.36)) and outside(1567.4, (1540.0, 1567.34))
    assert not outside(62, (62.4, 70.0)) and outside(62, (62.6, 70.0))  # an integer: +- 0.5
    assert outside(62.0, (62.1, 70.0))  # written 62.0: +- 0.05
    assert not outside(1567.4, None)


def test_table_ci_shows_each_interval(results: tuple[Path, dict[str, str]]) -> None:
    # the all-"Yes" runs: MME perception 200 in every resample ([200, 200]); counts have no interval
    wide = _table(results, "--ci")
    assert wide[2] == "| llava-v1.5-7b | 200.00 [200.00, 200.00] |"
    long = [
        line for line in _table(results, "--layout", "long", "--ci") if line.startswith("| sharegpt4v-7b |")
    ]
    assert "| sharegpt4v-7b | mme | llava | existence_acc_plus | 0.00 [0.00, 0.00] | 14 |  |" in long
    assert "| sharegpt4v-7b | mme | llava | unparsed | 0.00 | 14 |  |" in long
    csv = _table(results, "--layout", "long", "--format", "csv", "--ci")
    assert csv[0] == "model,task,protocol,metric,value,n,limit,ci_low,ci_high"
    assert "sharegpt4v-7b,mme,llava,perception,200,14,,200,200" in csv
    assert "sharegpt4v-7b,mme,llava,failed,0,14,,," in csv


def test_table_errors_are_one_line(results: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    out, env = results
    for args, expected in (
        (["--layout", "nature"], "unknown table layout 'nature'"),
        (["--compare", "published"], "--compare published needs a paper's layout"),
        (["--layout", "zoo", "--compare", "paper"], "--compare takes 'published'"),
        (["--layout", "zoo", "--ci"], "--ci needs --layout wide or long"),
    ):
        result = evalkit("table", str(out), *args, env=env)
        assert result.returncode == 2 and expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    empty = tmp_path / "empty" / "m" / "mme"
    empty.mkdir(parents=True)
    result = evalkit("table", str(tmp_path / "empty"), "--layout", "zoo")
    assert (result.returncode == 2 and "no results" in result.stderr) or "no <model>" in result.stderr


def test_table_of_one_model_folder(results: tuple[Path, dict[str, str]]) -> None:
    """`evalkit table <the folder run printed>` works: that model's row."""
    out, env = results
    result = evalkit("table", str(out / "sharegpt4v-7b"), "--layout", "zoo", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2].startswith("| ShareGPT4V-7B | Vicuna-7B |")
    wide = evalkit("table", str(out / "sharegpt4v-7b"), env=env)
    assert wide.returncode == 0 and wide.stdout.splitlines()[2].startswith("| sharegpt4v-7b |")


def test_blank_and_limited_runs_are_marked_and_never_set_beside_the_paper(
    results: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A blank-image run of a config-named model is its own, named row with no published numbers; a --limit
    run's cells carry † and are not compared with the full benchmark's published value."""
    out, env = results
    data = out.parent / "data"
    for extra in (["--blank-images", "--name", "sharegpt4v-7b+blank"], ["--limit", "6", "--name", "smoke"]):
        args = ["run", "--model", "sharegpt4v-7b", "--tasks", "mme", "--protocol", "llava", *extra]
        done = evalkit(*args, "--data-root", str(data), "--output", str(tmp_path), env=env)
        assert done.returncode == 0, done.stderr
    result = evalkit("table", str(tmp_path), "--layout", "zoo", "--compare", "published", env=env)
    assert result.returncode == 0, result.stderr
    rows = {
        line.split("|")[1].strip(): line.split("|") for line in result.stdout.splitlines()[2:] if "|" in line
    }
    blank = rows["ShareGPT4V-7B (blank images)"]
    perception = json.loads((tmp_path / "sharegpt4v-7b+blank" / "mme" / "metrics.json").read_text())
    assert blank[5].strip() == f"{perception['metrics']['perception']:.1f}"  # no "(published, difference)"
    smoke = rows["ShareGPT4V-7B"]  # the folder "smoke" is the config's model, limited
    limited = json.loads((tmp_path / "smoke" / "mme" / "metrics.json").read_text())
    assert limited["limit"] == 6
    assert smoke[5].strip() == f"{limited['metrics']['perception']:.1f}†"
    assert "† a --limit run" in result.stdout
