"""Confidence intervals: a seeded percentile bootstrap over each benchmark's independent units, checked
against the normal approximation and the exact binomial, on draws made by hand, and with every vectorised
twin against re-running the task's own aggregate on the same draws."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import pytest

from evalkit.protocols import get_protocol
from evalkit.records import Prediction, RunRecord
from evalkit.registry import get_task
from evalkit.scoring.bootstrap import COUNTS, Resampler, Unit, ci95, plan, replicates
from evalkit.scoring.outcomes import grouped_accuracy
from evalkit.scoring.ratios import accuracy_ratios, twin
from evalkit.stages import intervals
from tests.support.fixtures import write_mme
from tests.test_e2e_openai import evalkit

MMBENCH = get_task("mmbench_en_dev")


def record(
    rid: object, score: float, answer: str | None = "x", target: str = "t", **meta: object
) -> Prediction:
    return Prediction(
        id=str(rid),
        prompt="",
        output="",
        answer=answer,
        score=score,
        parse="rule",
        meta={"target": target, **meta},
    )


def test_accuracy_interval_is_the_normal_approximation_and_the_binomials() -> None:
    # 280 of 400 right: p = 0.7, standard error sqrt(0.7 * 0.3 / 400) = 2.2913 points, so 70 +- 4.491
    records = [record(i, float(i < 280)) for i in range(400)]
    se = 100 * math.sqrt(0.7 * 0.3 / 400)
    normal = (70 - 1.96 * se, 70 + 1.96 * se)
    # the bootstrap distribution of a mean of 400 draws is exactly Binomial(400, 0.7) / 400: its 2.5% and
    # 97.5% quantiles, 262 and 298 right (scipy.stats.binom.ppf), are what infinitely many resamples give
    binomial = (100 * 262 / 400, 100 * 298 / 400)
    # Tolerance 0.35 SE (0.8 points): from 1000 resamples a 2.5% quantile has a standard error of
    # sqrt(0.025 * 0.975 / 1000) / phi(1.96) = 0.085 SE (3 of them: 0.25 SE), values lie on a 0.25-point
    # grid (half a step: 0.05 SE), the binomial's skew moves the ends by 0.02 SE
    for seed in (0, 1):
        for unit in (Unit(), Unit(vectorised=accuracy_ratios())):  # re-aggregated, and the numpy twin
            found = ci95(records, grouped_accuracy(), unit, seed=seed)["accuracy"]
            assert found == pytest.approx(normal, abs=0.35 * se)
            assert found == pytest.approx(binomial, abs=0.3 * se)  # Monte Carlo and grid only


def test_the_binomial_quantiles_quoted_above() -> None:
    stats = pytest.importorskip("scipy.stats")
    assert (stats.binom.ppf(0.025, 400, 0.7), stats.binom.ppf(0.975, 400, 0.7)) == (262, 298)


def test_a_unit_drawn_twice_counts_as_two_units() -> None:
    """MME: image a (both questions right) drawn twice, image b (one of two right) once."""
    mme = get_task("mme")
    a = [record(f"a.jpg#{k}", 1.0, category="existence", image_id="a.jpg") for k in range(2)]
    b = [record("b.jpg#0", 1.0, category="existence", image_id="b.jpg")]
    b.append(record("b.jpg#1", 0.0, category="existence", image_id="b.jpg"))
    records = a + b
    drawn = Resampler(records, plan(records, mme.unit)).records(np.array([0, 0, 1]))
    metrics = mme.aggregate(drawn)
    # by hand: 5 of 6 questions right; pairs a, a's copy, b: 2 of 3 with both right
    assert (metrics["existence_acc"], metrics["existence_acc_plus"]) == (83.333333, 66.666667)
    assert metrics["existence"] == metrics["perception"] == 150.0
    assert mme.aggregate(a + a + b)["existence_acc_plus"] == 50.0  # not relabelled: a's copy joins a's pair
    assert {p.meta["image_id"] for p in drawn} == {"a.jpg", "a.jpg#copy1", "b.jpg"} and len(
        {p.id for p in drawn}
    ) == 6
    assert [p.meta["category"] for p in drawn] == ["existence"] * 6  # the unit's other fields stay
    # the twin weighs the same draw as counts per unit (a twice, b once)
    assert mme.unit.vectorised is not None
    weighed = mme.unit.vectorised([a, b]).evaluate(np.array([[2.0, 1.0]]))
    assert (weighed["existence_acc_plus"][0], weighed["perception"][0]) == (66.666667, 150.0)


def test_question_units_are_relabelled_by_id() -> None:
    records = [record("q1", 1.0), record("q2", 0.0)]
    drawn = Resampler(records, plan(records, Unit())).records(np.array([1, 1, 1, 0]))
    assert [p.id for p in drawn] == ["q2", "q2#copy1", "q2#copy2", "q1"]


def _vqa_like(n: int, seed: int = 0) -> list[Prediction]:
    """VQA-like scores under two fields; "other" is a value of both, so one key (the later field's)."""
    rng = random.Random(seed)
    scores, types, kinds = (
        [0.0, 0.3, 0.6, 0.9, 1.0],
        ["yes/no", "number", "other"],
        ["Other", "Yes No", "Count"],
    )
    return [
        record(i, rng.choice(scores), answer_type=rng.choice(types), kind=rng.choice(kinds)) for i in range(n)
    ]


def test_seeded_and_deterministic() -> None:
    records, aggregate = _vqa_like(300), grouped_accuracy("answer_type")
    first = ci95(records, aggregate, resamples=200)
    assert first == ci95(records, aggregate, resamples=200) and set(first) == {
        "accuracy",
        "yes_no",
        "number",
        "other",
    }
    assert first != ci95(records, aggregate, resamples=200, seed=1)
    vectorised = ci95(records, aggregate, Unit(vectorised=accuracy_ratios("answer_type")), resamples=200)
    assert vectorised.keys() == first.keys()
    for key, interval in first.items():  # per key: pytest 9.2's approx takes no tuples inside a dict
        assert vectorised[key] == pytest.approx(interval, abs=2e-6), key


def _mmbench(questions: int, seed: int = 0) -> list[Prediction]:
    rng = random.Random(seed)
    out = []
    for g in range(questions):
        right = rng.random() < 0.7
        for k in range(rng.choice([2, 3, 4])):
            meta = {"index": g + k * 1_000_000, "g_index": g, "pass": k, "category": f"Cat {g % 5}",
                    "l2_category": ["Perception", "Reasoning"][g % 2]}  # fmt: skip
            out.append(record(g + k * 1_000_000, float(right and rng.random() < 0.9), target="A", **meta))
    return out


def _pope(n: int) -> list[Prediction]:
    rng = random.Random(1)
    splits = ("adversarial", "popular", "random")
    return [
        record(
            i, 0.0, rng.choice(["yes", "no", "no", None]), rng.choice(["yes", "no"]), category=splits[i % 3]
        )
        for i in range(n)
    ]


def _mme(pairs: int) -> list[Prediction]:
    rng = random.Random(2)
    subtasks = ["existence", "count", "OCR", "code_reasoning", "text_translation"]
    return [
        record(f"{i}.jpg#{k}", float(rng.random() < 0.75), category=subtasks[i % 5], image_id=f"{i}.jpg")
        for i in range(pairs)
        for k in range(2)
    ]


def _hallusion(sets: int) -> list[Prediction]:
    rng = random.Random(3)
    out = []
    for s in range(sets):  # set ids repeat across VD / VS: VLMEvalKit's grouping joins them, the unit too
        for f in range(rng.choice([1, 2, 3])):
            for q in range(rng.choice([1, 2])):
                meta = {"category": ["VD", "VS"][s % 2], "subcategory": f"sub{s % 3}", "set_id": str(s // 2),
                        "figure_id": str(f), "question_id": str(q)}  # fmt: skip
                out.append(record(len(out), float(rng.random() < 0.6), **meta))
    return out


def _mmstar(n: int) -> list[Prediction]:
    rng = random.Random(4)
    return [
        record(i, float(rng.random() < 0.5), category=f"Core {i % 3}", l2_category=f"fine {i % 6}")
        for i in range(n)
    ]


def _mmmu(n: int) -> list[Prediction]:
    rng = random.Random(5)
    return [
        record(i, float(rng.random() < 0.4), discipline=f"D {i % 3}", subject=f"S {i % 9}") for i in range(n)
    ]


TWINS: dict[str, tuple[str, str, Callable[[], list[Prediction]]]] = {
    "vqav2 (grouped_accuracy)": ("vqav2_val", "llava", partial(_vqa_like, 500)),
    "mmmu (grouped_accuracy, 2 fields)": ("mmmu_val", "llava", partial(_mmmu, 450)),
    "mmbench": ("mmbench_en_dev", "llava", partial(_mmbench, 150)),
    "mmbench test, published answers": ("mmbench_en_test", "llava", partial(_mmbench, 150)),
    "pope": ("pope", "llava", partial(_pope, 600)),
    "pope, unparsed as no": ("pope", "vlmevalkit", partial(_pope, 600)),
    "mme": ("mme", "llava", partial(_mme, 200)),
    "hallusionbench": ("hallusionbench", "llava", partial(_hallusion, 80)),
    "hallusionbench, vlmevalkit groups": ("hallusionbench", "vlmevalkit", partial(_hallusion, 80)),
    "mmstar": ("mmstar", "llava", partial(_mmstar, 600)),
    "mmstar, macro": ("mmstar", "lmms-eval", partial(_mmstar, 600)),
    # 12 questions over 6 l2 categories: many resamples miss one, and the macro means average those present
    "mmstar, small (l2 categories missing from resamples)": ("mmstar", "lmms-eval", partial(_mmstar, 12)),
    "mmstar llava, small": ("mmstar", "llava", partial(_mmstar, 12)),
}


@pytest.mark.parametrize("case", TWINS)
def test_each_twin_gives_what_reaggregation_gives_on_the_same_draws(case: str) -> None:
    name, protocol, make = TWINS[case]
    task, records = get_task(name), make()
    unit, aggregate = task.unit_for(protocol), task.benchmark_for(protocol)
    assert unit.vectorised is not None
    fast = replicates(records, aggregate, unit, resamples=100, seed=7)
    slow = replicates(records, aggregate, replace(unit, vectorised=None), resamples=100, seed=7)
    assert fast.vectorised and not slow.vectorised
    assert fast.values.keys() == slow.values.keys() == set(aggregate(records)) - COUNTS
    for (
        key,
        values,
    ) in slow.values.items():  # 2e-6: percents rounded to 6 decimals after sums in another order
        np.testing.assert_allclose(fast.values[key], values, rtol=0, atol=2e-6, equal_nan=True, err_msg=key)
        varies = np.nanstd(values) > 0 or key in ("code_reasoning", "cognition") or len(records) < 50
        assert varies, key  # the draws do vary (a tiny set's small categories may all score alike)


def test_grouped_accuracy_is_recognised_through_wrappers() -> None:
    aggregate = grouped_accuracy("answer_type", "kind")
    assert twin(aggregate) is not None and twin(lambda ps: aggregate(ps)) is None

    def wrapper(predictions: list[Prediction]) -> dict[str, float]:
        return aggregate(predictions)

    wrapper.__wrapped__ = aggregate  # type: ignore[attr-defined]  # as functools.wraps sets it
    found = twin(wrapper)
    assert (
        found is not None
        and found([[p] for p in _vqa_like(5)]).keys
        == accuracy_ratios("answer_type", "kind")([[p] for p in _vqa_like(5)]).keys
    )


def test_a_twin_that_disagrees_with_the_aggregate_is_not_used() -> None:
    pope, records = get_task("pope"), _pope(300)
    llava = pope.benchmark_for(
        "llava"
    )  # an unparsed reply outside the counts; the vlmevalkit twin counts it no
    assert not replicates(records, llava, pope.unit_for("vlmevalkit"), resamples=5).vectorised
    assert replicates(records, llava, pope.unit_for("llava"), resamples=5).vectorised
    missing = Unit(vectorised=accuracy_ratios())  # keys the aggregate has and the twin lacks
    assert not replicates(_vqa_like(50), grouped_accuracy("answer_type"), missing, resamples=5).vectorised


def test_mmbench_draws_questions_not_passes() -> None:
    # 200 questions of 2-4 passes, the passes of a question all right or all wrong: 130 right
    records, one_each = [], []
    for g in range(200):
        right = float(g % 20 < 13)
        one_each.append(record(g, right))
        for k in range(2 + g % 3):
            meta = {"index": g + k * 1_000_000, "g_index": g, "pass": k, "category": "c", "l2_category": "l"}
            records.append(record(g + k * 1_000_000, right, target="A", **meta))
    aggregate, unit = MMBENCH.benchmark_for("llava"), MMBENCH.unit_for("llava")
    assert aggregate(records)["overall"] == 65.0
    questions = replicates(one_each, grouped_accuracy(), Unit(), ["accuracy"], 200, seed=3).values["accuracy"]
    for each in (unit, replace(unit, vectorised=None)):  # the twin, and re-aggregation
        circular = replicates(records, aggregate, each, ["overall"], 200, seed=3).values["overall"]
        np.testing.assert_array_equal(circular, questions)  # the same questions drawn, resample by resample
    grouped = ci95(records, aggregate, unit)["overall"]
    assert grouped == ci95(one_each, grouped_accuracy(), Unit(vectorised=accuracy_ratios()))["accuracy"]
    se = 100 * math.sqrt(0.65 * 0.35 / 200)  # 3.373 points: 65 +- 6.61 (tolerance as in the first test)
    assert grouped == pytest.approx((65 - 1.96 * se, 65 + 1.96 * se), abs=0.35 * se)
    # drawn pass by pass, copies of a question's passes would merge into it: a narrower, wrong interval
    passes = ci95(records, aggregate, Unit(), resamples=200)["overall"]
    assert passes[1] - passes[0] < 0.5 * (grouped[1] - grouped[0])


def test_a_split_without_answers_has_no_intervals() -> None:
    task = get_task("vqav2_testdev")
    records = [record(i, 0.0, "yes", target="", answers=[]) for i in range(20)]
    metrics = task.aggregate_for("llava")(records)
    assert set(metrics) == {"answered", "empty", "unparsed", "failed"}
    assert intervals(task, get_protocol("llava"), records, metrics) == ({}, None)
    assert ci95([], grouped_accuracy()) == {}
    calls: list[int] = []

    def counts(predictions: list[Prediction]) -> dict[str, float]:
        calls.append(len(predictions))
        return task.aggregate(predictions)

    assert ci95(records, counts) == {} and calls == [20]  # run once, for the keys; never resampled


def test_an_interval_that_cannot_be_made_costs_no_metrics(caplog: pytest.LogCaptureFixture) -> None:
    task = replace(get_task("mme"), unit=Unit(("no_such_field",)))  # a unit the records cannot name
    records = _mme(10)
    metrics = task.aggregate_for("llava")(records)
    assert intervals(task, get_protocol("llava"), records, metrics, "run.jsonl") == ({}, None)
    assert "run.jsonl: no confidence intervals (KeyError: 'no_such_field')" in caplog.text


def _run_mme(tmp_path: Path, wrong: set[str]) -> Path:
    """The MME fixture through the scripted backend: every reply right but those of the ids in `wrong`."""
    root = tmp_path / "data"
    write_mme(root)
    samples = get_task("mme").load(root / "mme").samples
    replies = {s.id: (s.target if s.id not in wrong else {"yes": "No", "no": "Yes"}[s.target]).capitalize()
               for s in samples}  # fmt: skip
    (tmp_path / "replies.json").write_text(json.dumps({"replies": replies}))
    args = ["--model", f"scripted:{tmp_path / 'replies.json'}", "--tasks", "mme", "--data-root", str(root)]
    result = evalkit("run", *args, "--output", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    return tmp_path / "out" / "replies" / "mme"


def test_a_runs_metrics_json_carries_intervals_and_a_rescore_the_same(tmp_path: Path) -> None:
    # existence has two images: 000000006040 answered right, 000000044279 wrong twice; every other right.
    # Within existence a resample draws 2 of its 2 images: both right (1/4: existence 200), one each (1/2:
    # 100), both wrong (1/4: 0); the other three perception subtasks give 600, so perception is 600, 700 or
    # 800 with chances 1/4, 1/2, 1/4, whose 2.5% and 97.5% points are 600 and 800. Cognition
    # (code_reasoning: one image, right) is 200 in every resample.
    run = _run_mme(tmp_path, {"existence/000000044279.png#0", "existence/000000044279.png#1"})
    record = json.loads((run / "metrics.json").read_text())
    assert record["metrics"]["perception"] == 700.0 and record["primary"] == "perception"
    assert record["ci95"]["perception"] == [600.0, 800.0] and record["ci95"]["cognition"] == [200.0, 200.0]
    assert record["ci95"]["existence_acc_plus"] == [0.0, 100.0] and record["ci95"]["count"] == [200.0, 200.0]
    assert not {"unparsed", "failed"} & record["ci95"].keys()  # counts are not metrics
    how = {"method": "percentile bootstrap", "resamples": 1000, "seed": 0, "unit": "image pair"}
    assert record["ci"] == how | {"within": ["category"]}
    scored = evalkit("score", "--task", "mme", "--predictions", str(run / "predictions.jsonl"),
                     "--output", str(tmp_path / "rescored"))  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    again = json.loads((tmp_path / "rescored" / "metrics.json").read_text())
    assert again["ci95"] == record["ci95"] and again["ci"] == record["ci"]  # another process, the same draws
    old = {k: v for k, v in record.items() if k not in ("ci95", "ci")}  # metrics.json from before intervals
    assert RunRecord.model_validate(old).ci95 == {} and RunRecord.model_validate(old).ci is None


def test_strata_keep_every_mme_subtask_in_every_resample(tmp_path: Path) -> None:
    # all right: perception 800 in every resample. Drawn across subtasks instead, a resample would miss a
    # one-image subtask (count, OCR) with chance (6/7)^7 = 34% and its perception would fall short of 800
    run = _run_mme(tmp_path, set())
    record = json.loads((run / "metrics.json").read_text())
    assert record["ci95"]["perception"] == [800.0, 800.0] and record["ci95"]["total"] == [1000.0, 1000.0]
