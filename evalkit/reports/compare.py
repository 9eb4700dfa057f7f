"""`evalkit compare RUN_A RUN_B`: two runs of the same task sample by sample (batch 16 vs batch 1, fp16 vs
bf16, two checkpoints): how often the replies and the scores agree, and a paired test of the difference.

Only samples scored in both runs are paired (failed, unparsed-but-scored and judge-pending records are
counted separately). Scores that are all 0/1 (or 0/100) get McNemar's exact test on the discordant pairs
(a two-sided binomial test); other scores a Wilcoxon signed-rank test. Nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import InputError
from evalkit.records import METRICS, Prediction, State, read_predictions, read_run_record


@dataclass(frozen=True)
class Comparison:
    task: str
    paired: int  # samples scored in both runs
    only_a: int
    only_b: int
    same_reply: int
    same_score: int
    mean_a: float
    mean_b: float
    a_better: int  # paired samples scoring higher in A
    b_better: int
    test: str
    p_value: float


def _records(folder: Path) -> tuple[str, dict[str, Prediction]]:
    predictions = folder / "predictions.jsonl"
    if not predictions.is_file():
        raise InputError(
            f"{folder}: no predictions.jsonl (give a run's task folder, e.g. results/<model>/pope)"
        )
    task = read_run_record(folder / METRICS).task if (folder / METRICS).is_file() else folder.name
    parts = sorted(folder.glob("predictions.rank*.jsonl"))
    records = [r for path in [predictions, *parts] for r in read_predictions(path)]
    return task, {r.id: r for r in records if r.state in (State.SCORED, State.UNPARSED)}


def compare_runs(a: Path, b: Path) -> Comparison:
    from scipy.stats import binomtest, wilcoxon

    task_a, recs_a = _records(a)
    task_b, recs_b = _records(b)
    if task_a != task_b:
        raise InputError(f"{a} holds {task_a}, {b} holds {task_b}: compare runs of the same task")
    ids = sorted(set(recs_a) & set(recs_b))
    if not ids:
        raise InputError(f"{a} and {b} share no scored sample")
    pairs = [(recs_a[i], recs_b[i]) for i in ids]
    sa, sb = [p.score for p, _ in pairs], [q.score for _, q in pairs]
    a_better = sum(x > y for x, y in zip(sa, sb, strict=True))
    b_better = sum(y > x for x, y in zip(sa, sb, strict=True))
    binary = {*sa, *sb} <= {0.0, 1.0} or {*sa, *sb} <= {0.0, 100.0}
    if a_better + b_better == 0:
        test, p_value = "none (no sample scores differently)", 1.0
    elif binary:
        test, p_value = "McNemar exact", binomtest(a_better, a_better + b_better, 0.5).pvalue
    else:
        test, p_value = "Wilcoxon signed-rank", float(wilcoxon(sa, sb).pvalue)
    return Comparison(
        task=task_a,
        paired=len(ids),
        only_a=len(set(recs_a) - set(recs_b)),
        only_b=len(set(recs_b) - set(recs_a)),
        same_reply=sum(p.output == q.output for p, q in pairs),
        same_score=sum(p.score == q.score for p, q in pairs),
        mean_a=sum(sa) / len(sa),
        mean_b=sum(sb) / len(sb),
        a_better=a_better,
        b_better=b_better,
        test=test,
        p_value=float(p_value),
    )
