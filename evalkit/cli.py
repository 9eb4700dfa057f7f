"""The `evalkit` command: thin wrappers that parse options, call the library and print."""

from __future__ import annotations

import functools
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from evalkit.errors import ConfigError, EvalkitError, InputError
from evalkit.records import RunRecord
from evalkit.reports.exports import EXPORTS
from evalkit.scoring.judge import Judge

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Reproducible evaluation of vision-language models on standard benchmarks.",
)
console = Console(stderr=True)
out = Console(soft_wrap=True)


class ListWhat(StrEnum):
    tasks = "tasks"
    groups = "groups"
    protocols = "protocols"
    models = "models"
    templates = "templates"


ExportKind = StrEnum("ExportKind", {name: name for name in EXPORTS})  # type: ignore[misc]  # the registry's


class Format(StrEnum):
    md = "md"
    csv = "csv"
    html = "html"


# The judge options of `run` and `score`, defined once
JudgeModel = Annotated[
    str | None, typer.Option(help="LLM judge model for judged tasks (MM-Vet, LLaVA-Bench)")
]
JudgeBaseUrl = Annotated[
    str | None, typer.Option(help="the judge's OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
]
JudgeKeyEnv = Annotated[str, typer.Option(help="environment variable holding the judge's key")]
JudgeConcurrency = Annotated[int, typer.Option(min=1, help="judge requests in flight")]
JudgePrice = Annotated[
    str | None, typer.Option(help="USD per 1k input,output tokens for the cost estimate, e.g. 0.0025,0.01")
]
JudgeMatcher = Annotated[
    bool, typer.Option(help="with --judge: match replies the rules cannot read (options, yes/no)")
]
JudgeTimeout = Annotated[
    float, typer.Option(min=0.01, help="seconds one judge request may take, start to end (each retry anew)")
]
JudgeRetries = Annotated[int, typer.Option(min=0, help="judge retries on 429/5xx/timeouts")]
StripReasoning = Annotated[
    bool | None,
    typer.Option(
        "--strip-reasoning/--keep-reasoning",
        help="remove <think>/<analysis> blocks before parsing (default: the protocol's: on for lmms-eval)",
    ),
]


def _data_root(value: Path | None) -> Path:
    root = value or (Path(os.environ["EVALKIT_DATA"]) if os.environ.get("EVALKIT_DATA") else None)
    if root is None:
        raise ConfigError("no data root: give --data-root DIR or set EVALKIT_DATA")
    if not root.is_dir():
        raise InputError(f"data root not found: {root}")
    return root


def _progress(enabled: bool = True) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not enabled or not console.is_terminal,  # a log gets lines instead (_bar_progress)
    )


def _metrics_table(title: str, metrics: dict[str, float], primary: str | None = None) -> Table:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in metrics.items():
        label = f"[bold]{key}[/bold]" if key == primary else key
        table.add_row(
            label, f"{value:.2f}" if isinstance(value, float) and not value.is_integer() else f"{value:g}"
        )
    return table


def _summary_table(title: str, records: list[RunRecord]) -> Table:
    """One row per task of a run: its primary metric, the sample count and the outcome counts."""
    table = Table(title=title, show_header=True)
    for column in ("task", "metric", "value", "n", "unparsed", "failed"):
        table.add_column(column, justify="left" if column in ("task", "metric") else "right")
    for r in records:
        value = r.metrics.get(r.primary)
        n = f"{r.n} of {r.data.samples} (--limit)" if r.limit is not None else str(r.n)
        table.add_row(
            r.task, r.primary, "-" if value is None else f"{value:.2f}", n,
            f"{r.metrics.get('unparsed', 0):g}", f"{r.metrics.get('failed', 0):g}",
        )  # fmt: skip
    return table


_INTERRUPTED = False
F = TypeVar("F")


def interruptible(command: F) -> F:
    """Ctrl-C in a long command: the first stops it (what is written stays, the resume line is printed,
    nothing still loading is waited for); a second one exits at once. Never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        def handler(signum: int, frame: object) -> None:
            global _INTERRUPTED
            if _INTERRUPTED:
                os.write(2, b"\ninterrupted again: exiting now\n")
                os._exit(130)
            _INTERRUPTED = True
            raise KeyboardInterrupt

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, handler)
        try:
            return command(*args, **kwargs)
        except KeyboardInterrupt:  # caught here: click would print "Aborted!" and wait for worker threads
            _interrupted()

    return wrapper  # type: ignore[return-value]


def _exit_now(code: int) -> None:
    """Exit without waiting for worker threads (a model still loading, a request in flight): what matters
    is already on disk, and the OS releases the folder locks."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _interrupted() -> None:
    """The first Ctrl-C's end: what was written stays, the resume line is printed, nothing is waited for."""
    signal.signal(signal.SIGINT, lambda *_: _exit_now(130))
    command = shlex.join(["evalkit", *sys.argv[1:]])
    console.print(
        f"interrupted: run the same command to resume where it stopped:\n  {escape(command)}", soft_wrap=True
    )
    _exit_now(130)


Revision = Annotated[
    str | None, typer.Option(help="hub revision (branch, tag or commit) of a hub id; the commit is recorded")
]
VisionTower = Annotated[
    Path | None,
    typer.Option(
        help="CLIP folder for an original LLaVA / ShareGPT4V / xtuner checkpoint (default: its config's)"
    ),
]


@app.command()
@interruptible
def run(
    model: Annotated[
        str,
        typer.Option(
            help="config name, checkpoint folder, hub id (org/name), openai:<model-id> or vllm:<checkpoint>"
        ),
    ],
    tasks: Annotated[str, typer.Option(help="comma-separated task names (evalkit list tasks)")],
    protocol: Annotated[
        str | None, typer.Option(help="llava | lmms-eval (default: model config or llava)")
    ] = None,
    data_root: Annotated[
        Path | None, typer.Option(help="benchmark data root (default $EVALKIT_DATA)")
    ] = None,
    output: Annotated[Path, typer.Option(help="results folder")] = Path("results"),
    name: Annotated[
        str | None, typer.Option(help="results sub-folder (default: config name or model slug)")
    ] = None,
    batch_size: Annotated[str | None, typer.Option(help="samples per batch, or 'auto'")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="first N samples of each task")] = None,
    dtype: Annotated[
        str | None, typer.Option(help="auto|float16|bfloat16|float32 (default: checkpoint's)")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible endpoint (default $OPENAI_BASE_URL)")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="requests in flight (openai backend)")
    ] = None,
    request_timeout: Annotated[
        float, typer.Option(min=0.01, help="seconds one request may take, start to end (openai backend)")
    ] = 120.0,
    max_retries: Annotated[int, typer.Option(min=0, help="retries on 429/5xx/timeouts (openai backend)")] = 5,
    tensor_parallel_size: Annotated[
        int | None, typer.Option(min=1, help="GPUs one model copy spans (vllm backend; default 1)")
    ] = None,
    judge: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = "OPENAI_API_KEY",
    judge_concurrency: JudgeConcurrency = 8,
    judge_price: JudgePrice = None,
    judge_matcher: JudgeMatcher = False,
    judge_timeout: JudgeTimeout = 120.0,
    judge_max_retries: JudgeRetries = 5,
    strip_reasoning: StripReasoning = None,
    revision: Revision = None,
    vision_tower: VisionTower = None,
    template: Annotated[
        str | None, typer.Option(help="conversation template (evalkit list templates) or 'native'")
    ] = None,
    trust_remote_code: Annotated[
        bool | None,
        typer.Option(
            "--trust-remote-code", help="let the checkpoint run its own Python code (review it first)"
        ),
    ] = None,
    blank_images: Annotated[
        bool,
        typer.Option(
            "--blank-images",
            help="ablation: every image replaced by a mid-grey one of its size (does the model look?); "
            "recorded, and the default --name gets '+blank'",
        ),
    ] = False,
) -> None:
    """Evaluate a model on tasks; resumes where a previous run of the same command stopped."""
    from evalkit.backends import BackendOptions
    from evalkit.session import RunRequest, evaluate

    the_judge = _judge(judge, judge_base_url, judge_api_key_env, judge_concurrency, judge_price,
                       judge_timeout, judge_max_retries)  # fmt: skip
    request = RunRequest(
        model=model,
        tasks=tasks,
        data_root=_data_root(data_root),
        output=output,
        protocol=protocol,
        name=name,
        limit=limit,
        strip_reasoning=strip_reasoning,
        backend=BackendOptions(
            dtype=dtype,
            base_url=base_url,
            concurrency=concurrency,
            batch_size=_batch_size(batch_size),
            timeout=request_timeout,
            max_retries=max_retries,
            tensor_parallel_size=tensor_parallel_size,
        ),
        judge=the_judge,
        matcher=judge_matcher,
        blank_images=blank_images,
        model_options={
            "revision": revision,
            "vision_tower": str(vision_tower) if vision_tower else None,
            "template": template,
            "trust_remote_code": trust_remote_code,
        },
    )
    with (
        _progress() as bar,
        evaluate(request, lambda world: _bar_progress(bar) if world.is_main else None) as done,
    ):
        settings, records, world = done.settings, done.records, done.world
    if not world.is_main:
        return
    for record in records:
        out.print(
            _metrics_table(
                f"{settings.name} / {record.task} ({record.protocol}, n={record.n})",
                _headline(record.metrics),
                record.primary,
            )
        )
    if len(records) > 1:
        out.print(_summary_table(f"{settings.name} ({settings.protocol.name})", records))
    _judge_summary(the_judge)
    for record in records:
        if record.judge and record.judge.get("pending"):
            out.print(
                f"[yellow]{record.task}: {record.judge['pending']} grade(s) pending (the judge could not be "
                "reached): run the same command again; the metrics leave them out until then[/yellow]"
            )
    used = next((r.model_cfg for r in records if r.model_cfg.get("device")), None)
    if used:  # what the hf backend chose (auto dtype, the rank's device)
        out.print(f"model ran on {used['device']} in {used.get('dtype', '?')}")
    out.print(f"results: {settings.output / settings.name}")


@app.command()
@interruptible
def sweep(
    file: Annotated[Path, typer.Argument(help="sweep file (configs/sweeps/*.yaml)")],
    data_root: Annotated[
        Path | None, typer.Option(help="benchmark data root (default: the file's, else $EVALKIT_DATA)")
    ] = None,
) -> None:
    """Run models x tasks x protocols from a sweep file (resumable; a failing pair does not stop the
    others), then write the tables to <output>/tables/ and the report to <output>/report.html."""
    from evalkit.reports.table import render
    from evalkit.sweep import check_protocols, load_sweep, run_sweep, write_tables

    plan = load_sweep(file)
    check_protocols(plan)
    root = _data_root(data_root or plan.data_root)

    def judge(entry: Any) -> Judge | None:
        return _judge(entry.model, entry.base_url, entry.api_key_env, entry.concurrency, None,
                      entry.timeout, entry.max_retries)  # fmt: skip

    with _progress() as bar:
        results = run_sweep(
            plan,
            root,
            judge_factory=judge,
            on_pair=lambda model, protocol: bar.console.print(f"[bold]{escape(model)}[/bold] ({protocol})"),
            progress=lambda world: _bar_progress(bar) if world.is_main else None,
        )
    done = [r for r in results if r.error is None]
    if done:
        from evalkit.reports.html import write_report

        skipped: list[str] = []
        tables = write_tables(plan, skipped)
        shown = next((t for t in plan.tables if all(not s.startswith(f"table {t} ") for s in skipped)), None)
        if shown is not None:
            out.print(render(plan.output, shown, "md"), markup=False)
        for problem in skipped:
            out.print(f"[yellow]{escape(problem)}[/yellow]", soft_wrap=True)
        out.print(f"tables: {tables}")
        page = write_report(plan.output, plan.output / "report.html", data_root=root)
        out.print(f"report: {page} ({page.stat().st_size / 1024:.0f} KiB)")
    failed = [r for r in results if r.error is not None]
    for r in failed:
        out.print(
            f"[red]failed: {escape(r.model)} ({r.protocol}): {escape(r.error or '')}[/red]", soft_wrap=True
        )
    out.print(f"{len(done)} of {len(results)} model x protocol runs finished")
    if failed:
        raise typer.Exit(1)


def _bar_progress(bar: Progress) -> Callable[[str, int, int], None]:
    """A progress callback drawing one bar per task with samples/s on a terminal; without one (a cluster
    job's log) a plain line per task every $EVALKIT_PROGRESS_SECONDS (default 30) with samples/s and ETA."""
    if not bar.console.is_terminal:
        from evalkit.progress import LineProgress

        try:
            every = float(os.environ.get("EVALKIT_PROGRESS_SECONDS") or 30)
        except ValueError:
            raise ConfigError("EVALKIT_PROGRESS_SECONDS must be a number of seconds") from None
        return LineProgress(lambda line: bar.console.print(line, markup=False, highlight=False), every)
    bars: dict[str, TaskID] = {}

    def progress(task_name: str, done: int, total: int) -> None:
        if task_name not in bars:
            bars[task_name] = bar.add_task(task_name, total=total, completed=done, rate="")
            if 0 < done < total:  # a resumed run: what it kept
                bar.console.print(f"{task_name}: resuming, {done} of {total} samples kept")
        tid = bars[task_name]
        bar.update(tid, completed=done)
        speed = bar.tasks[tid].speed
        bar.update(tid, rate=f"{speed:.1f} samples/s" if speed else "")

    return progress


def _judge(
    model: str | None,
    base_url: str | None,
    key_env: str,
    concurrency: int,
    price: str | None,
    timeout: float = 120.0,
    max_retries: int = 5,
) -> Judge | None:
    if model is None:
        return None
    from evalkit.scoring.judge import JudgeConfig

    prices: tuple[float | None, float | None] = (None, None)
    if price is not None:
        try:
            prices = tuple(float(p) for p in price.split(","))  # type: ignore[assignment]
        except ValueError:
            prices = ()  # type: ignore[assignment]
        if len(prices) != 2:
            raise ConfigError(f"--judge-price takes 'input,output' USD per 1k tokens, not {price!r}")
    return Judge(
        JudgeConfig(
            model=model,
            base_url=base_url,
            api_key_env=key_env,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            price_per_1k_input=prices[0],
            price_per_1k_output=prices[1],
        )
    )


def _judge_summary(judge: Judge | None) -> None:
    """One line on what the judge cost: calls made, cache hits, tokens, the estimate when prices are given."""
    if judge is None:
        return
    u = judge.usage()
    cost = f", about ${u.cost_usd:.4f}" if u.cost_usd is not None else ""
    out.print(
        f"judge {judge.config.model}: {u.calls} calls, {u.cache_hits} from the cache, "
        f"{u.prompt_tokens:,} + {u.completion_tokens:,} tokens{cost}"
    )


def _headline(metrics: dict[str, float]) -> dict[str, float]:
    keys = [
        k for k in metrics if not k.endswith(("_acc", "_acc_plus", "_precision", "_recall", "_yes_ratio"))
    ]
    return {k: metrics[k] for k in keys}


def _batch_size(value: str | None) -> int | None:
    if value is None:
        return None
    if value == "auto":
        return 64  # the hf backend halves a batch that does not fit and keeps the size that does
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(f"--batch-size must be a positive integer or 'auto', not {value!r}")
    return int(value)


@app.command()
@interruptible
def score(
    task: Annotated[str, typer.Option(help="task name")],
    predictions: Annotated[Path, typer.Option(help="evalkit predictions.jsonl or a LLaVA answers file")],
    protocol: Annotated[
        str | None, typer.Option(help="parsing to apply (default: the run's own protocol, else llava)")
    ] = None,
    data_root: Annotated[Path | None, typer.Option(help="needed for LLaVA answer files")] = None,
    output: Annotated[
        Path | None, typer.Option(help="write the re-scored predictions.jsonl and metrics.json here")
    ] = None,
    judge: JudgeModel = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key_env: JudgeKeyEnv = "OPENAI_API_KEY",
    judge_concurrency: JudgeConcurrency = 8,
    judge_price: JudgePrice = None,
    judge_matcher: JudgeMatcher = False,
    judge_timeout: JudgeTimeout = 120.0,
    judge_max_retries: JudgeRetries = 5,
    strip_reasoning: StripReasoning = None,
) -> None:
    """Re-score predictions without running a model (judged tasks: the judge's cache makes it free)."""
    from evalkit.judging import require_judge
    from evalkit.registry import get_task
    from evalkit.rescore import rescore_file, sniff_format, write_rescored

    the_task = get_task(task)
    root = _data_root(data_root) if sniff_format(predictions) == "llava" else None
    the_judge = _judge(
        judge,
        judge_base_url,
        judge_api_key_env,
        judge_concurrency,
        judge_price,
        judge_timeout,
        judge_max_retries,
    )
    require_judge([the_task], the_judge)
    if judge_matcher and the_judge is None:
        raise ConfigError("--judge-matcher needs a judge: give --judge MODEL")
    # the judge is checked before its first request the cache cannot answer: re-scoring from the cache works
    # offline
    result = rescore_file(the_task, predictions, protocol, root, the_judge, judge_matcher, strip_reasoning)
    if output is not None:
        write_rescored(result, output)
    title = f"{the_task.name} ({result.protocol.name}, n={len(result.predictions)}) from {predictions}"
    out.print(_metrics_table(title, _headline(result.metrics), result.primary))
    _judge_summary(the_judge)


@app.command()
def table(
    results: Annotated[Path, typer.Argument(help="results folder")] = Path("results"),
    layout: Annotated[
        str,
        typer.Option(
            help="wide: models x tasks (primary); long: every metric; zoo / xtuner: a paper's table "
            "(evalkit/data/layouts/)"
        ),
    ] = "wide",
    format: Annotated[Format, typer.Option("--format", help="md, csv or html")] = Format.md,
    compare: Annotated[
        str | None, typer.Option(help="'published': the paper's numbers beside ours (zoo layouts)")
    ] = None,
    ci: Annotated[
        bool, typer.Option("--ci", help="each value's 95% confidence interval beside it (wide, long)")
    ] = False,
) -> None:
    """Print a leaderboard from the metrics.json files under RESULTS."""
    from evalkit.reports.table import render

    if compare not in (None, "published"):
        raise ConfigError(f"--compare takes 'published', not {compare!r}")
    if layout in ("wide", "long") and compare:
        raise ConfigError("--compare published needs a paper's layout (--layout zoo or xtuner)")
    if ci and layout not in ("wide", "long"):
        raise ConfigError("--ci needs --layout wide or long (a paper's layout: see --compare published)")
    sys.stdout.write(render(results, layout, format.value, compare=compare == "published", ci=ci))


@app.command()
def report(
    results: Annotated[Path, typer.Argument(help="results folder")] = Path("results"),
    out_path: Annotated[Path, typer.Option("--out", help="the HTML file to write")] = Path("report.html"),
    data_root: Annotated[
        Path | None,
        typer.Option(help="where the samples' images are (default $EVALKIT_DATA, else where each run read)"),
    ] = None,
    samples: Annotated[
        int, typer.Option(min=0, help="records embedded per run, failed, unparsed and wrong first")
    ] = 200,
) -> None:
    """Write one self-contained HTML page (opens offline): leaderboard, charts by category, provenance
    and a sample browser per run."""
    from evalkit.reports.html import write_report

    root = data_root or (Path(os.environ["EVALKIT_DATA"]) if os.environ.get("EVALKIT_DATA") else None)
    written = write_report(results, out_path, data_root=root, samples=samples)
    out.print(f"wrote {written} ({written.stat().st_size / 1024:.0f} KiB)")


@app.command()
def export(
    kind: Annotated[ExportKind, typer.Argument(help="which submission / cross-check file")],
    run_task_dir: Annotated[Path, typer.Argument(help="a run's task folder, e.g. results/<model>/mme")],
    out_path: Annotated[Path, typer.Option("--out", help="output folder or file")] = Path("export"),
    data_root: Annotated[
        Path | None,
        typer.Option(help="data root holding the benchmark's question files (default: the run's)"),
    ] = None,
    allow_missing: Annotated[
        bool, typer.Option(help="export questions without an answer (not run, failed) instead of stopping")
    ] = False,
) -> None:
    """Write a benchmark's submission or cross-check file from prediction records."""
    from evalkit.reports.exports import EXPORTS

    writer = EXPORTS[kind.value]
    written = writer(run_task_dir, out_path, data_root=data_root, allow_missing=allow_missing)
    out.print(f"wrote {len(written)} files to {out_path}" if len(written) > 1 else f"wrote {written[0]}")


@app.command("list")
def list_cmd(what: Annotated[ListWhat, typer.Argument()]) -> None:
    """List tasks, protocols or model configs."""
    if what is ListWhat.tasks:
        from evalkit.registry import all_tasks

        for t in all_tasks().values():
            out.print(
                f"{t.name:<16} v{t.version}  primary={t.primary:<12} protocols={','.join(t.variants)}  "
                f"{t.description}"
            )
    elif what is ListWhat.groups:
        from evalkit.registry import task_groups

        for group, members in task_groups().items():
            out.print(f"{group:<14} {','.join(members)}")
    elif what is ListWhat.protocols:
        from evalkit.protocols import all_protocols

        for p in all_protocols().values():
            out.print(f"{p.name:<11} v{p.version}  {p.description}")
    elif what is ListWhat.templates:
        from evalkit.templates import TEMPLATES

        for t in TEMPLATES.values():
            out.print(f"{t.name:<10} {t.description}")
        out.print(f"{'native':<10} the checkpoint's own chat template")
    else:
        from evalkit.models import describe_configs

        configs = describe_configs()
        rows = [("name", "family", "format", "template", "checkpoint"), *configs]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        for row in rows:
            out.print(
                escape("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[4])
            )
        if not configs:
            out.print(
                "no model configs (configs/models/*.yaml); a checkpoint folder or openai:<id> also works"
            )


@app.command()
def compare(
    run_a: Annotated[Path, typer.Argument(help="a run's task folder, e.g. results/<model>/pope")],
    run_b: Annotated[Path, typer.Argument(help="another run's folder of the same task")],
) -> None:
    """Two runs of one task sample by sample: agreement of replies and scores, and a paired test."""
    from evalkit.reports.compare import compare_runs

    c = compare_runs(run_a, run_b)
    out.print(f"{c.task}: {c.paired} samples scored in both (only in A: {c.only_a}, only in B: {c.only_b})")
    out.print(f"same reply: {c.same_reply} ({100 * c.same_reply / c.paired:.1f}%)")
    out.print(f"same score: {c.same_score} ({100 * c.same_score / c.paired:.1f}%)")
    out.print(
        f"mean score: A {c.mean_a:.4g}, B {c.mean_b:.4g}; A higher on {c.a_better}, B higher on {c.b_better}"
    )
    out.print(f"paired test: {c.test}, p = {c.p_value:.4g}")


@app.command()
def convert(
    checkpoint: Annotated[
        Path, typer.Argument(help="original LLaVA / ShareGPT4V / xtuner checkpoint folder")
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="folder to write (must not exist)")],
    vision_tower: VisionTower = None,
) -> None:
    """Write an original LLaVA-code (LLaVA-1.5/1.6, ShareGPT4V, xtuner -hf) or xtuner checkpoint as a
    transformers LLaVA / LLaVA-NeXT checkpoint (`--model` also converts on the fly, into a cache)."""
    from evalkit.checkpoints import convert as convert_checkpoint
    from evalkit.checkpoints import detect

    if out_dir.exists():
        raise InputError(f"{out_dir}: already exists; give a new folder")
    found = detect(checkpoint)
    out.print(f"{checkpoint}: {found.family} ({found.format} format); converting...")
    convert_checkpoint(found, out_dir, vision_tower)
    out.print(f"wrote {out_dir} (evalkit run --model {out_dir} ...)")


@app.command()
def show(
    what: Annotated[str, typer.Argument(help="'protocol'")],
    name: Annotated[str, typer.Argument(help="protocol name")],
    task: Annotated[str | None, typer.Option(help="only these tasks (comma-separated)")] = None,
) -> None:
    """Show a protocol: its template, reply handling and departures, and per task the generation limit,
    image mode, parser and the exact prompt of a fixed sample."""
    from evalkit.protocols import get_protocol
    from evalkit.registry import all_tasks, example
    from evalkit.templates import render_template

    if what != "protocol":
        raise ConfigError("usage: evalkit show protocol NAME")
    p = get_protocol(name)
    out.print(f"[bold]{escape(p.name)}[/bold] v{p.version}: {escape(p.description)}")
    if p.reference:
        out.print(f"reproduces: {escape(p.reference)}")
    tags = ", ".join(start + "..." + end for start, end in p.reasoning_tags) or "none (--strip-reasoning)"
    own = "the model's training template, else its chat template" if p.own_template == "trained" else None
    if p.template:
        own = f"{p.template} (a model trained with another template gets its own)"
    out.print(f"template: {own or 'model chat template'}")
    tokenization = "chunks around each image, BOS on the first (tokenizer_image_token)"
    out.print(f"tokenization: {tokenization if p.tokenization == 'llava' else 'the processor'}")
    out.print(f"replies stripped before parsing: {p.strip_output}; reasoning blocks removed: {escape(tags)}")
    out.print("where this protocol departs from its reference:")
    for note in p.departures:
        out.print(f"  - {escape(note)}")
    for t in all_tasks().values():
        if task and t.name not in task.split(","):
            continue
        if p.name not in t.variants:
            continue
        v = t.variant(p.name)
        out.print(
            f"\n[bold]{t.name}[/bold]  max_new_tokens={v.max_new_tokens}  image_mode={v.image_mode}  "
            f"parse={escape(getattr(v.score, '__qualname__', '?'))}"
        )
        for note in v.departures:
            out.print(f"  departs: {escape(note)}")
        sample = example(t)
        if sample is not None and v.prompt is not None:
            prompt = v.prompt(sample)
            if p.template is not None:  # the exact text the model reads, one <image> per image
                n_images = len(sample.meta.get("images", ())) or 1
                prompt = render_template(p.template, prompt, n_images)
                out.print(f"  model input for sample {escape(sample.id)} ({p.template} template):")
            else:
                out.print(f"  prompt of sample {escape(sample.id)} (inside the model's own chat template):")
            for line in prompt.split("\n"):
                out.print(f"    | {escape(line)}", highlight=False)


@app.command()
def demo(
    output: Annotated[
        Path, typer.Option(help="where the demo's models, results, tables and report go")
    ] = Path("results-demo"),
) -> None:
    """Prove the image path offline: a tiny trained model, the same with blank images, and an untrained one
    on the bundled MME and POPE samples (configs/sweeps/demo.yaml), then the tables and the report."""
    from evalkit.demo.run import run_demo

    with _progress() as bar:
        run_demo(output, console=out, progress=lambda world: _bar_progress(bar) if world.is_main else None)


data_app = typer.Typer(no_args_is_help=True, help="Check what a data root holds.")
app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    tasks: Annotated[str, typer.Option(help="comma-separated task or group names")],
    data_root: Annotated[
        Path | None, typer.Option(help="benchmark data root (default $EVALKIT_DATA)")
    ] = None,
    images: Annotated[bool, typer.Option(help="also look up every image file the tasks name")] = True,
) -> None:
    """Per task: whether its files are there and readable, its samples, and image files missing.
    Exit status 1 when anything is missing."""
    from evalkit.datacheck import check
    from evalkit.registry import parse_task_list

    root = _data_root(data_root)
    table = Table(title=f"data under {root}", show_header=True)
    for column in ("task", "status", "samples", "images missing", "where / what is wrong"):
        table.add_column(column, overflow="fold")
    reports = [check(t, root, images) for t in parse_task_list(tasks)]
    for r in reports:
        if r.problem is not None:
            table.add_row(r.task, "[red]missing[/red]", "-", "-", escape(r.problem))
        else:
            status = "ok" if r.ok else "[yellow]images missing[/yellow]"
            lost = f"{r.missing_images} of {r.images}" if images else "not checked"
            where = r.path + (f"; first missing: {r.first_missing}" if r.first_missing else "")
            table.add_row(r.task, status, str(r.samples), lost, escape(f"{where} ({r.format})"))
    out.print(table)
    if not all(r.ok for r in reports):
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except EvalkitError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:  # disk full, a read-only folder, ... wherever it was not caught closer
        where = f"{exc.filename}: " if exc.filename else ""
        console.print(
            f"[red]error:[/red] {escape(where + (exc.strerror or str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
