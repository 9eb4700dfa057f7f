"""`evalkit report` and `evalkit table --format html` over a results folder made by the real runner (the
scripted backend, in-process) on the MME and POPE fixtures: the page's structure parsed and checked against
metrics.json and predictions.jsonl always; where headless Chromium is installed, the page rendered (a
screenshot's pixels) and its filter script run (the DOM after a load with `#filter=wrong`)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from bs4 import BeautifulSoup, Tag
from matplotlib.figure import Figure
from PIL import Image

from evalkit.backends.base import Failure, Request
from evalkit.backends.scripted import Reply, ScriptedBackend
from evalkit.pipeline import LazyBackend
from evalkit.protocols import get_protocol
from evalkit.records import PREDICTIONS, Prediction, RunRecord, State, read_predictions, read_run_record
from evalkit.registry import get_task
from evalkit.reports.charts import category_chart, label
from evalkit.reports.html import write_report
from evalkit.reports.table import render
from evalkit.runner import RunSettings, run_task
from evalkit.scoring.judge import Judge, JudgeConfig
from tests.support.fixtures import COLOURS, mme_image_path, mme_items, pope_items, write_mme, write_pope
from tests.support.fixtures_judged import write_mmvet
from tests.support.fixtures_mmbench import write_en_test
from tests.support.openai_server import FakeOpenAIServer
from tests.tasks.test_mmbench import option_reply
from tests.test_e2e_judged import ANSWERS, judge_reply
from tests.test_e2e_openai import evalkit, run_args

SCRIPT = 'I cannot tell <script>alert("owned")</script>'
# alpha reads the image and answers right, except: one wrong, one unparsed, one failed per task
WRONG = {"existence/000000044279.png#0", "adversarial/2"}
UNPARSED = {"count/000000055072.png#1": SCRIPT, "random/1": "Maybe."}
FAILED = {"OCR/0005.png#0", "popular/3"}
TASKS = ("mme", "pope")
PROTOCOLS = {"mme": "llava", "pope": "lmms-eval"}  # lmms-eval's POPE reads only an exact yes/no
MODELS = ("alpha", "beta")  # beta says "Yes" to everything


def nearest_colour(rgb: tuple[int, ...]) -> str:
    return min(COLOURS, key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOURS[c], rgb, strict=True)))


def alpha(request: Request) -> Reply:
    if request.id in FAILED:
        return Failure("request timed out")
    if request.id in UNPARSED:
        return UNPARSED[request.id]
    image = request.images[0]
    seen = nearest_colour(image.getpixel((image.width // 2, image.height // 2)))
    asked = re.search(r"Is the image (\w+)\?", request.prompt).group(1)
    right = "Yes" if asked == seen else "No"
    return ({"Yes": "No", "No": "Yes"}[right]) if request.id in WRONG else right


IMAGE_COLOURS = {
    **{f"{mme_image_path(i)}#{k}": i.colour for i in mme_items() for k in (0, 1)},
    **{f"{i.split}/{i.question_id}": i.colour for i in pope_items()},
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data root, results folder): alpha and beta on MME (llava protocol) and POPE (lmms-eval)."""
    tmp = tmp_path_factory.mktemp("report")
    root, out = tmp / "data", tmp / "results"
    write_mme(root)
    write_pope(root)
    for name, reply in (("alpha", alpha), ("beta", lambda request: "Yes")):
        for task in TASKS:
            protocol = get_protocol(PROTOCOLS[task])
            settings = RunSettings(name=name, model="scripted", protocol=protocol, data_root=root, output=out)
            backend = ScriptedBackend(reply)
            run_task(get_task(task), settings, LazyBackend(lambda backend=backend: backend, batch_size=4))
    return root, out


@pytest.fixture(scope="module")
def page(made: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, out = made
    return write_report(out, tmp_path_factory.mktemp("page") / "report.html", data_root=root)


def parse(path: Path) -> BeautifulSoup:
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def records(out: Path, model: str, task: str) -> list[Prediction]:
    return read_predictions(out / model / task / PREDICTIONS)


def expected_outcome(p: Prediction) -> str:
    """The browser's outcome of a record, from its fields: failed / unparsed / (scored) wrong or right."""
    if p.error is not None:
        return "failed"
    if p.state is State.UNPARSED:
        return "unparsed"
    return "right" if p.score == 1.0 else "wrong"


def run_section(soup: BeautifulSoup, task: str, model: str) -> Tag:
    (section,) = soup.select(f'section.task[data-task="{task}"] section.run[data-model="{model}"]')
    return section


def row_outcomes(section: Tag) -> dict[str, str]:
    return {tr["data-id"]: tr["data-outcome"] for tr in section.select("tr[data-outcome]")}


def test_the_fixture_gives_every_outcome(made: tuple[Path, Path]) -> None:
    _, out = made
    for task in TASKS:
        found = [expected_outcome(p) for p in records(out, "alpha", task)]
        assert {o: found.count(o) for o in ("wrong", "unparsed", "failed")} == {
            "wrong": 1,
            "unparsed": 1,
            "failed": 1,
        }, task


def test_leaderboard_cells_are_the_metrics_files_values(made: tuple[Path, Path], page: Path) -> None:
    _, out = made
    board = parse(page).select_one("#leaderboard ~ table.board")
    header = [th.get_text() for th in board.select("thead th")]
    assert header[0] == "model"
    rows = {
        tr.th.get_text(): [td.select_one(".value").get_text() for td in tr.select("td")]
        for tr in board.select("tbody tr")
    }
    assert sorted(rows) == list(MODELS)
    for model in MODELS:
        for task, text in zip(TASKS, rows[model], strict=True):
            record = json.loads((out / model / task / "metrics.json").read_text())
            assert header[1 + TASKS.index(task)] == f"{task} ({record['primary']})"
            assert text == f"{record['metrics'][record['primary']]:.2f}", (model, task)
    assert rows["beta"][0] == "200.00"  # "Yes" to every MME pair: 50 on each of 4 perception subtasks


def test_one_section_per_task_and_one_browser_per_run(page: Path) -> None:
    soup = parse(page)
    assert [s["data-task"] for s in soup.select("section.task")] == list(TASKS)
    for task in TASKS:
        browsers = soup.select(f'section.task[data-task="{task}"] section.run[data-browser]')
        assert [b["data-model"] for b in browsers] == list(MODELS)
        chart = soup.select_one(f'section.task[data-task="{task}"] img.chart')
        assert chart["src"].startswith("data:image/png;base64,")


def test_rows_and_counts_match_the_records(made: tuple[Path, Path], page: Path) -> None:
    _, out = made
    soup = parse(page)
    for task in TASKS:
        for model in MODELS:
            section = run_section(soup, task, model)
            expected = {p.id: expected_outcome(p) for p in records(out, model, task)}
            assert row_outcomes(section) == expected, (task, model)
            counts = {s["data-outcome"]: int(s["data-count"]) for s in section.select(".counts .count")}
            assert counts == {o: list(expected.values()).count(o) for o in set(expected.values())}
            buttons = {b["data-filter"]: b.get_text() for b in section.select("button[data-filter]")}
            for o in ("wrong", "unparsed", "failed"):  # offered even when none: "failed (0)"
                assert buttons[o] == f"{o} ({list(expected.values()).count(o)})"


def test_model_output_is_shown_as_text_never_as_markup(page: Path) -> None:
    raw = page.read_text(encoding="utf-8")
    assert "<script>alert" not in raw
    soup = parse(page)
    assert len(soup.find_all("script")) == 1  # the page's own filter script, nothing from a record
    row = soup.select_one('tr[data-id="count/000000055072.png#1"]')
    assert row.select_one("pre.output").get_text() == SCRIPT
    assert row["data-outcome"] == "unparsed"


def test_page_requests_nothing_from_elsewhere(page: Path) -> None:
    soup = parse(page)
    policy = soup.find("meta", attrs={"http-equiv": "Content-Security-Policy"})["content"]
    assert "default-src 'none'" in policy and "img-src data:" in policy
    for tag in soup.find_all(src=True):
        assert tag["src"].startswith("data:"), tag.name
    for tag in soup.find_all(href=True):
        assert tag["href"].startswith("#"), tag["href"]
    urls = re.findall(r"url\(([^)]*)\)", soup.style.get_text())
    assert urls and all(u.startswith("data:image/jpeg;base64,") for u in urls)
    assert not soup.find_all(["link", "iframe", "object", "embed"])


def thumbnail_colours(soup: BeautifulSoup, section: Tag) -> dict[str, str]:
    """Each row's thumbnail, decoded from the CSS rule of its class, as the nearest fixture colour."""
    rules = dict(
        re.findall(
            r"\.(img\d+)\{background-image:url\(data:image/jpeg;base64,([^)]+)\)\}", soup.style.get_text()
        )
    )
    found = {}
    for tr in section.select("tr[data-outcome]"):
        (css_class,) = [c for c in tr.select_one(".thumb")["class"] if c != "thumb"]
        image = Image.open(io.BytesIO(base64.b64decode(rules[css_class]))).convert("RGB")
        found[tr["data-id"]] = nearest_colour(image.getpixel((image.width // 2, image.height // 2)))
    return found


def test_thumbnails_are_each_samples_own_image(page: Path) -> None:
    soup = parse(page)
    for task in TASKS:
        section = run_section(soup, task, "alpha")
        shown = thumbnail_colours(soup, section)
        assert shown == {i: IMAGE_COLOURS[i] for i in shown} and len(shown) == len(row_outcomes(section))
    # one embedded image per distinct image: MME's 7 images (two questions each) and POPE's 10
    assert len(re.findall(r"\.img\d+\{", soup.style.get_text())) == 7 + 10


def test_without_the_data_rows_say_no_image(made: tuple[Path, Path], tmp_path: Path) -> None:
    _, out = made
    (tmp_path / "empty").mkdir()
    soup = parse(write_report(out, tmp_path / "r.html", data_root=tmp_path / "empty"))
    assert not soup.select(".thumb") and "url(" not in soup.style.get_text()
    cells = soup.select("tr[data-outcome] .noimg")
    assert len(cells) == 2 * (14 + 10) and all(c.get_text() == "no image" for c in cells)
    notes = soup.select("section.run p.note")
    assert len(notes) == 4 and all(str(tmp_path / "empty") in n.get_text() for n in notes)


def test_the_sample_cap_embeds_failed_unparsed_and_wrong_first(
    made: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = made
    soup = parse(write_report(out, tmp_path / "r.html", samples=3))
    alpha_mme = row_outcomes(run_section(soup, "mme", "alpha"))
    # exactly its three problem records, in file order
    assert sorted(alpha_mme.values()) == ["failed", "unparsed", "wrong"]
    assert set(alpha_mme) == {*FAILED, *UNPARSED, *WRONG} & {p.id for p in records(out, "alpha", "mme")}
    beta_mme = run_section(soup, "mme", "beta")
    assert list(row_outcomes(beta_mme).values()) == ["wrong"] * 3  # beta has 7 wrong: the first 3 of them
    assert "Showing 3 of them" in beta_mme.select_one(".counts").get_text()
    # the counts still cover every record
    assert int(beta_mme.select_one('.count[data-outcome="wrong"]')["data-count"]) == 7


def test_provenance_names_protocol_model_version_and_data(made: tuple[Path, Path], page: Path) -> None:
    _, out = made
    soup = parse(page)
    record = read_run_record(out / "alpha" / "pope" / "metrics.json")
    rows = {
        tr.th.get_text(): tr.td.get_text()
        for tr in run_section(soup, "pope", "alpha").select("details.provenance > table.prov tr")
    }
    assert rows["protocol"] == "lmms-eval" and rows["model"] == "scripted" and rows["backend"] == "scripted"
    assert rows["evalkit"].startswith(record.evalkit_version)
    assert rows["data"] == f"{record.data.path} ({record.data.format}, {record.data.fingerprint})"
    assert json.loads(rows["generation"]) == record.generation


def test_intervals_shown_where_the_records_keep_them(made: tuple[Path, Path], page: Path) -> None:
    assert "ci95" in RunRecord.model_fields
    _, out = made
    record = read_run_record(out / "alpha" / "pope" / "metrics.json")
    interval = record.ci95.get(record.primary)
    assert interval, "the runner recorded no interval for the primary metric"
    board = parse(page).select_one("table.board")
    (alpha_row,) = [tr for tr in board.select("tbody tr") if tr.th.get_text() == "alpha"]
    cell = alpha_row.select("td")[TASKS.index("pope")]
    assert cell.select_one(".ci").get_text() == f"[{interval[0]:.2f}, {interval[1]:.2f}]"


def test_a_run_without_answers_is_no_answer_key_never_wrong(tmp_path: Path) -> None:
    """An MMBench test run on a file without answers (metrics: counts only, no primary) beside a scored
    one: its read replies are "no answer key", none is wrong, no row reads "expected:", and the task's
    chart leaves it out (here it is the task's only run: no chart at all)."""
    root, out = tmp_path / "data", tmp_path / "results"
    write_en_test(root, answers=False)
    with FakeOpenAIServer(option_reply) as server:
        result = evalkit(*run_args(server, root, out, "mmbench_en_test", "--protocol", "vlmevalkit"))
        assert result.returncode == 0, result.stderr
    record = read_run_record(out / "tiny-test" / "mmbench_en_test" / "metrics.json")
    assert record.primary not in record.metrics  # the run is unscored as a whole
    soup = parse(write_report(out, tmp_path / "r.html", data_root=root))
    section = run_section(soup, "mmbench_en_test", "tiny-test")
    counts = {s["data-outcome"]: int(s["data-count"]) for s in section.select(".counts .count")}
    assert counts == {"no_answer_key": 5, "unparsed": 1}
    assert "5 no answer key" in section.select_one(".counts").get_text()
    buttons = {b["data-filter"]: b.get_text() for b in section.select("button[data-filter]")}
    assert buttons == {
        "all": "all (6)",
        "unparsed": "unparsed (1)",
        "failed": "failed (0)",
        "no_answer_key": "no answer key (5)",
    }
    assert sorted(row_outcomes(section).values()) == ["no_answer_key"] * 5 + ["unparsed"]
    assert not section.select(".target") and "expected:" not in section.get_text()
    assert len(section.select(".nokey")) == 6 and section.select_one(".nokey").get_text() == "no answer key"
    task = soup.select_one('section.task[data-task="mmbench_en_test"]')
    assert not task.select("img.chart") and "No scored records to chart." in task.get_text()


def chart_figure(task: str, by_model: dict[str, list[Prediction]], monkeypatch: pytest.MonkeyPatch) -> Figure:
    """The figure `category_chart` draws, kept as it is saved."""
    drawn: list[Figure] = []
    save = Figure.savefig

    def keep(self: Figure, *args: object, **kwargs: object) -> None:
        drawn.append(self)
        save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    assert category_chart(task, by_model).startswith("data:image/png;base64,")
    (figure,) = drawn
    return figure


def test_chart_shows_names_with_dollars_and_underscores_as_written(monkeypatch: pytest.MonkeyPatch) -> None:
    """`$` in a name is text, never mathtext (`$\\frac$` would crash the report); a model named `_x`
    keeps its legend entry."""
    categories = ("$\\frac$", "cost $5", "_under")
    by_model = {
        name: [
            Prediction(
                id=f"{c}{n}",
                prompt="",
                output="A",
                answer="A",
                score=n % 2,
                parse="exact",
                meta={"category": c},
            )
            for c in categories
            for n in range(2)
        ]
        for name in ("$a$", "_hidden")
    }
    figure = chart_figure("mme", by_model, monkeypatch)
    (ax,) = figure.axes
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [label(c) for c in sorted(categories)] and ticks[0] == "\\$\\frac\\$"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["\\$a\\$", "\u200b_hidden"]
    assert all(not t._preprocess_math(t.get_text())[1] for t in ax.get_yticklabels())  # plain text


def test_report_command_prints_the_page_and_its_size(made: tuple[Path, Path], tmp_path: Path) -> None:
    root, out = made
    target = tmp_path / "cli.html"
    result = evalkit("report", str(out), "--out", str(target), "--data-root", str(root), "--samples", "5")
    assert result.returncode == 0, result.stderr
    size = target.stat().st_size
    assert result.stdout.strip() == f"wrote {target} ({size / 1024:.0f} KiB)"
    soup = parse(target)
    assert all(len(s.select("tr[data-outcome]")) == 5 for s in soup.select("section.run"))


def markdown_cells(text: str) -> list[list[str]]:
    lines = [line for line in text.splitlines() if line.startswith("|") and not line.startswith("|---")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines]


def html_cells(text: str) -> list[list[str]]:
    table = BeautifulSoup(text, "html.parser").table
    return [[c.get_text() for c in tr.find_all(["th", "td"])] for tr in table.find_all("tr")]


@pytest.mark.parametrize("layout", ["wide", "long"])
def test_table_html_holds_the_markdown_tables_cells(made: tuple[Path, Path], layout: str) -> None:
    _, out = made
    assert html_cells(render(out, layout, "html")) == markdown_cells(render(out, layout, "md"))


def test_zoo_table_html_links_the_hub_checkpoint(
    made: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out = made
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "alpha.yaml").write_text(
        "backend: scripted\nmodel: x.json\ndisplay_name: Alpha-7B\ncheckpoint: Lin-Chen/ShareGPT4V-7B\n"
    )
    monkeypatch.setenv("EVALKIT_CONFIGS", str(tmp_path))
    text = render(out, "zoo", "html")
    link = BeautifulSoup(text, "html.parser").find("a")
    assert (
        link["href"] == "https://huggingface.co/Lin-Chen/ShareGPT4V-7B" and link.get_text() == "ShareGPT4V-7B"
    )
    md = markdown_cells(render(out, "zoo", "md"))
    md[1][2] = "ShareGPT4V-7B"  # the markdown link's text
    assert html_cells(text) == md


ODD = "<b>gamma &amp; co"  # a model folder's name is text, whatever it holds


def test_names_from_the_results_are_escaped_in_tables_and_report(
    made: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out = made
    odd = tmp_path / "results" / ODD / "mme"
    shutil.copytree(out / "alpha" / "mme", odd)
    result = evalkit("table", str(tmp_path / "results"), "--format", "html")
    assert result.returncode == 0, result.stderr
    table = BeautifulSoup(result.stdout, "html.parser")
    assert not table.find("b") and html_cells(result.stdout)[1][0] == ODD
    soup = parse(write_report(tmp_path / "results", tmp_path / "r.html"))
    assert not soup.find("b") and soup.select_one("table.board tbody th").get_text() == ODD


def test_a_judged_run_shows_its_judge_cost_and_grades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MM-Vet with a real judge server: grades 1.0, 1.0, 0.4 and one that never parses (a judge failure)."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    write_mmvet(tmp_path / "data")
    with FakeOpenAIServer(judge_reply) as server:
        judge_url = server.base_url
        config = JudgeConfig(
            model="judge-model",
            base_url=server.base_url,
            cache_dir=tmp_path / "cache",
            price_per_1k_input=0.001,
            price_per_1k_output=0.002,
        )
        settings = RunSettings(
            name="alpha",
            model="scripted",
            protocol=get_protocol("llava"),
            data_root=tmp_path / "data",
            output=tmp_path / "results",
            judge=Judge(config),
        )
        backend = ScriptedBackend(lambda request: next(a for q, a in ANSWERS.items() if q in request.prompt))
        record = run_task(get_task("mmvet"), settings, LazyBackend(lambda: backend, batch_size=4))
    soup = parse(write_report(tmp_path / "results", tmp_path / "r.html", data_root=tmp_path / "data"))
    section = run_section(soup, "mmvet", "alpha")
    assert row_outcomes(section) == {
        "v1_0": "right",
        "v1_1": "right",
        "v1_2": "judge_failure",
        "v1_3": "partial",
    }
    buttons = [b.get_text() for b in section.select("button[data-filter]")]
    assert buttons == [
        "all (4)",
        "failed (0)",
        "unparsed (0)",
        "judge failure (1)",
        "wrong (0)",
        "partial (1)",
        "right (2)",
    ]
    rows = {tr.th.get_text(): tr.td.get_text() for tr in section.select("details.provenance > table.prov tr")}
    usage = record.judge["usage"]
    assert usage["calls"] == 3 + 5 and usage["cost_usd"] > 0  # the unparsed grade asked 5 times
    assert rows["judge"] == (
        f"judge-model at {judge_url}; 8 calls, 0 cached, "
        f"{usage['prompt_tokens']}+{usage['completion_tokens']} tokens; cost ${usage['cost_usd']:.4f}"
    )


CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian package chromium): page not rendered"
)


def chromium(profile: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",  # tests may run as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def pixels_near(image: np.ndarray, rgb: tuple[int, int, int], tolerance: int = 12) -> int:
    return int((np.abs(image.astype(int) - np.array(rgb)).max(axis=2) <= tolerance).sum())


@needs_chromium
def test_chromium_renders_the_page_with_its_charts_and_thumbnails(page: Path, tmp_path: Path) -> None:
    png = tmp_path / "screenshot.png"
    chromium(tmp_path / "profile", page.as_uri(), f"--screenshot={png}", "--window-size=1280,2000")
    image = np.asarray(Image.open(png).convert("RGB"))
    assert image.shape == (2000, 1280, 3)
    grey = image.mean(axis=2)
    assert grey.std() > 15 and (grey < 235).mean() > 0.02  # not blank: text, tables, images
    # the MME chart (matplotlib's C0 blue: alpha, C1 orange: beta) and the thumbnails (fixture red) drawn
    assert pixels_near(image, (31, 119, 180)) > 1000
    assert pixels_near(image, (255, 127, 14)) > 1000
    assert pixels_near(image, COLOURS["red"], tolerance=20) > 1000


@needs_chromium
def test_the_address_filters_every_browser_in_chromium(
    made: tuple[Path, Path], page: Path, tmp_path: Path
) -> None:
    _, out = made
    opened = BeautifulSoup(chromium(tmp_path / "p1", page.as_uri(), "--dump-dom").stdout, "html.parser")
    assert opened.select("tr[data-outcome]") and not opened.select("tr[hidden]")
    dom = chromium(tmp_path / "p2", page.as_uri() + "#filter=wrong", "--dump-dom").stdout
    soup = BeautifulSoup(dom, "html.parser")
    for task in TASKS:
        for model in MODELS:
            section = run_section(soup, task, model)
            visible = [
                tr["data-id"] for tr in section.select("tr[data-outcome]") if not tr.has_attr("hidden")
            ]
            wrong = [p.id for p in records(out, model, task) if expected_outcome(p) == "wrong"]
            assert visible == wrong, (task, model)
            assert section.select_one('button[data-filter="wrong"]')["aria-pressed"] == "true"
            assert section.select_one('button[data-filter="all"]')["aria-pressed"] == "false"
