"""`evalkit sweep`: models x tasks x protocols from one file, data checked first, a failing pair reported at
the end while the others finish, resumable, tables written."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.fixtures import pope_items, write_mme, write_pope
from tests.test_e2e_openai import evalkit, load_jsonl


def _replies(path: Path, default: str) -> Path:
    path.write_text(json.dumps({"replies": {}, "default": default}))
    return path


def _sweep(tmp_path: Path, body: str) -> Path:
    file = tmp_path / "sweep.yaml"
    file.write_text(body)
    return file


def test_sweep_runs_every_pair_reports_failures_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_pope(data)
    write_mme(data)
    yes, no = _replies(tmp_path / "yes.json", "Yes"), _replies(tmp_path / "no.json", "No")
    file = _sweep(
        tmp_path,
        f"models:\n  - scripted:{yes}\n  - {{model: 'scripted:{no}', name: always-no}}\n"
        f"  - {tmp_path / 'no-such-checkpoint'}\n"
        f"tasks: pope,mme\nprotocol: [llava, lmms-eval]\ndata_root: {data}\noutput: {tmp_path / 'out'}\n",
    )
    first = evalkit("sweep", str(file), timeout=300)
    assert first.returncode == 1, first.stderr
    lines = first.stdout.splitlines()
    assert "4 of 6 model x protocol runs finished" in lines
    failures = [line for line in lines if line.startswith("failed:")]
    assert len(failures) == 2 and all("checkpoint folder not found" in f for f in failures)
    folders = sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir() and p.name != "tables")
    assert folders == ["always-no@llava", "always-no@lmms-eval", "yes@llava", "yes@lmms-eval"]
    pope = len(pope_items())
    for folder in folders:
        metrics = json.loads((tmp_path / "out" / folder / "pope" / "metrics.json").read_text())
        assert metrics["protocol"] == folder.split("@")[1] and metrics["n"] == pope
    # "Yes" to every POPE question: recall 100, precision = the share of "yes" labels, by hand from the data
    yes_labels = sum(item.label == "yes" for item in pope_items())
    yes_pope = json.loads((tmp_path / "out" / "yes@llava" / "pope" / "metrics.json").read_text())
    assert yes_pope["metrics"]["all_yes_ratio"] == 100.0 and yes_pope["metrics"]["all_recall"] == 100.0
    assert abs(yes_pope["metrics"]["all_precision"] - 100 * yes_labels / pope) < 1e-5
    wide = (tmp_path / "out" / "tables" / "wide.md").read_text()
    assert wide.count("\n| yes@") == 2 and "pope" in wide.splitlines()[0]
    assert (tmp_path / "out" / "tables" / "wide.csv").read_text().startswith("model,")
    assert (tmp_path / "out" / "tables" / "wide.html").read_text().count("<td>yes@") == 2
    page = (tmp_path / "out" / "report.html").read_text()  # the report of the finished pairs
    assert f"report: {tmp_path / 'out' / 'report.html'}" in first.stdout.replace("\n", "")
    assert all(f">{folder}<" in page for folder in folders)
    before = {f: load_jsonl(tmp_path / "out" / f / "pope" / "predictions.jsonl") for f in folders}
    again = evalkit("sweep", str(file), timeout=300)  # resumes: nothing regenerated, nothing doubled
    assert again.returncode == 1
    assert before == {f: load_jsonl(tmp_path / "out" / f / "pope" / "predictions.jsonl") for f in folders}


def test_bad_sweep_files_are_one_line_and_run_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_pope(data)
    yes = _replies(tmp_path / "yes.json", "Yes")
    cases = {
        "models: [\n": "malformed YAML",
        f"models: [scripted:{yes}]\ntasks: pope\nprotocl: llava\n": "protocl: Extra inputs are not permitted",
        "models: []\ntasks: pope\n": "models: Value error, a non-empty list of models",
        f"models: [scripted:{yes}]\ntasks: pope\nprotocol: llava-2\n": "unknown protocol",
        f"models: [scripted:{yes}]\ntasks: pope,mme\n": "mme",  # MME's data is not there: checked first
    }
    for body, expected in cases.items():
        file = _sweep(tmp_path, body + f"data_root: {data}\noutput: {tmp_path / 'out'}\n")
        result = evalkit("sweep", str(file), timeout=120)
        assert result.returncode == 2, (body, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr, result.stderr
        assert not (tmp_path / "out").exists()


def test_shipped_sweeps_name_models_tasks_and_protocols_that_exist() -> None:
    from evalkit.models import resolve_model
    from evalkit.protocols import get_protocol
    from evalkit.registry import parse_task_list
    from evalkit.reports.zoo import get_layout
    from evalkit.sweep import load_sweep

    root = Path(__file__).resolve().parent.parent / "configs" / "sweeps"
    shipped = sorted(root.glob("*.yaml"))
    assert {p.name for p in shipped} >= {"sharegpt4v-zoo.yaml", "xtuner-table.yaml"}
    for path in shipped:
        sweep = load_sweep(path)
        assert parse_task_list(sweep.tasks)
        for entry in sweep.models:
            resolve_model(entry.model)
        for protocol in sweep.protocol:
            get_protocol(protocol or "llava")
        for layout in sweep.tables:
            if layout not in ("wide", "long"):
                assert get_layout(layout).protocol in sweep.protocol  # the paper's table, its protocol


def test_resumed_run_says_what_it_kept(tmp_path: Path) -> None:
    write_pope(tmp_path / "data")
    yes = _replies(tmp_path / "yes.json", "Yes")
    args = ["run", "--model", f"scripted:{yes}", "--tasks", "pope", "--data-root", str(tmp_path / "data")]
    args += ["--output", str(tmp_path / "out")]
    assert evalkit(*args, "--limit", "3").returncode == 0
    again = evalkit(*args)
    assert again.returncode == 0, again.stderr
    assert f"pope: resuming, 3 of {len(pope_items())} samples kept" in again.stderr  # with the progress


def test_sweep_files_expand_variables_and_run_blank_image_entries(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_pope(data)
    yes = _replies(tmp_path / "yes.json", "Yes")
    file = _sweep(
        tmp_path,
        "models:\n  - 'scripted:${REPLIES}'\n  - {model: 'scripted:${REPLIES}', blank_images: true}\n"
        "tasks: pope\nprotocol: [llava, lmms-eval]\ndata_root: ${SWEEP_DATA}\n"
        "output: ${SWEEP_OUT:-" + str(tmp_path / "out") + "}\n",
    )
    result = evalkit("sweep", str(file), env={"REPLIES": str(yes), "SWEEP_DATA": str(data)}, timeout=300)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"  # ${SWEEP_OUT} unset: its default
    folders = sorted(p.name for p in out.iterdir() if p.is_dir() and p.name != "tables")
    assert folders == ["yes+blank@llava", "yes+blank@lmms-eval", "yes@llava", "yes@lmms-eval"]
    for folder in folders:
        generation = json.loads((out / folder / "pope" / "metrics.json").read_text())["generation"]
        assert generation.get("blank_images", False) is ("+blank" in folder)
    # a variable without a default that is not set: one line naming it, nothing run
    missing = evalkit("sweep", str(file), env={"REPLIES": str(yes)}, timeout=120)
    assert missing.returncode == 2
    lines = missing.stderr.strip().splitlines()
    assert len(lines) == 1 and "${SWEEP_DATA} is not set" in lines[0], missing.stderr


def test_demo_sweep_reads_its_folders_from_the_environment() -> None:
    from evalkit.sweep import load_sweep

    path = Path(__file__).resolve().parent.parent / "configs" / "sweeps" / "demo.yaml"
    sweep = load_sweep(path, {"EVALKIT_DEMO": "/demo/out", "EVALKIT_DEMO_DATA": "/demo/data"})
    assert [(e.model, e.name, e.blank_images) for e in sweep.models] == [
        ("/demo/out/tiny-llava", "tiny-llava", False),
        ("/demo/out/tiny-llava", "tiny-llava+blank", True),
        ("/demo/out/tiny-llava-untrained", "tiny-llava-untrained", False),
    ]
    assert (sweep.data_root, sweep.output) == (Path("/demo/data"), Path("/demo/out/results"))
    assert sweep.tasks == ["mme", "pope"] and sweep.protocol == ["llava"] and "zoo" in sweep.tables
    defaults = load_sweep(path, {})  # a checkout's root after `make demo`
    assert defaults.models[0].model == "results-demo/tiny-llava"
    assert (defaults.data_root, defaults.output) == (Path("evalkit/demo/data"), Path("results-demo/results"))


def test_a_paper_table_with_nothing_to_show_leaves_the_others(tmp_path: Path) -> None:
    """The zoo layout's numbers are protocol llava's: a sweep run only under lmms-eval has none, so that
    table is left out with its reason, while the wide table and the report are still written."""
    data = tmp_path / "data"
    write_pope(data)
    yes = _replies(tmp_path / "yes.json", "Yes")
    file = _sweep(
        tmp_path,
        f"models: [scripted:{yes}]\ntasks: pope\nprotocol: lmms-eval\ndata_root: {data}\n"
        f"output: {tmp_path / 'out'}\ntables: [zoo, wide]\n",
    )
    result = evalkit("sweep", str(file), timeout=300)
    assert result.returncode == 0, result.stderr
    assert (
        "table zoo not written:" in result.stdout and "no results made under protocol llava" in result.stdout
    )
    tables = tmp_path / "out" / "tables"
    assert not (tables / "zoo.md").exists() and (tables / "wide.md").read_text().startswith("| model |")
    assert (tmp_path / "out" / "report.html").is_file()


def test_a_doubled_dollar_writes_a_literal_variable() -> None:
    from evalkit.sweep import expand

    text = "$${HOME} is ${HOME}, ${UNSET:-none}; a$$b and $x stay"
    assert expand([text], {"HOME": "/h"}, Path("s.yaml")) == ["${HOME} is /h, none; a$$b and $x stay"]
