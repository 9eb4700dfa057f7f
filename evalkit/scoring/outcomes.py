"""Scorer factories and aggregates shared by tasks: a parsed label or option letter against the target
(`label_match`, `option_match`), VQA accuracy (`vqa_match`), test-server splits (`submission_answer`),
accuracy overall and per metadata field (`grouped_accuracy`), and the outcome counts every task reports."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

from evalkit.data.readers import Sample
from evalkit.records import Prediction, State
from evalkit.scoring.group import accuracy, group_by, snake
from evalkit.scoring.types import Parsed, Scored


def label_match(parser: Callable[[str], Parsed]) -> Callable[[str, Sample], Scored]:
    """A scorer: 1.0 when the parser's label equals the sample's target, unparsed counts as wrong."""

    def score(output: str, sample: Sample) -> Scored:
        parsed = parser(output)
        return Scored(
            parsed.label, float(parsed.label is not None and parsed.label == sample.target), parsed.rule
        )

    score.__qualname__ = f"label_match({parser.__name__})"
    return score


def option_match(chain: Callable[[str, Mapping[str, str]], Parsed]) -> Callable[[str, Sample], Scored]:
    """A multiple-choice scorer: the chain's letter against the target letter, using the options kept in
    `sample.meta["options"]` ({"A": text, ...}) so that records re-score without the data."""

    def score(output: str, sample: Sample) -> Scored:
        parsed = chain(output, sample.meta["options"])
        right = parsed.label is not None and parsed.label == sample.target
        return Scored(parsed.label, float(right), parsed.rule)

    score.__qualname__ = f"option_match({getattr(chain, 'name', chain)})"
    return score


def vqa_match(rule: Callable[[str, Sequence[str]], tuple[str, float]]) -> Callable[[str, Sample], Scored]:
    """A VQA scorer: `rule` (a `scoring.vqa` accuracy such as `vqa_official`) compares the output with the
    annotators' answers in `sample.meta["answers"]`. The answer recorded is the prediction as compared.
    Every reply gets the official score as computed, an empty one too: the reference evaluations compare
    "" with the processed answers, so it earns credit where annotators answered "the" or "a"."""

    def score(output: str, sample: Sample) -> Scored:
        compared, accuracy = rule(output, sample.meta["answers"])
        return Scored(compared, accuracy, rule.__name__)

    score.__qualname__ = f"vqa_match({rule.__name__})"
    return score


def submission_answer(process: Callable[[str], str]) -> Callable[[str, Sample], Scored]:
    """For splits whose answers are held by a test server: records `process(output)`, the answer the
    submission file will carry, scored 0. Nothing is compared, so nothing is unparsed; `answered` and
    `empty` (see `submission_counts`) tell how many replies the file will hold."""

    def score(output: str, sample: Sample) -> Scored:
        return Scored(process(output), 0.0, process.__name__)

    score.__qualname__ = f"submission_answer({process.__name__})"
    return score


def submission_counts(predictions: list[Prediction]) -> dict[str, float]:
    """The aggregate of a split without answers: the outcome counts, `answered` (a non-empty answer for
    the submission file) and `empty` (a reply that is empty once processed)."""
    done = [p for p in predictions if not p.failed]
    answered = sum(bool(p.answer) for p in done)
    return {"answered": answered, "empty": len(done) - answered}


def grouped_accuracy(*fields: str) -> Callable[[list[Prediction]], dict[str, float]]:
    """An aggregate: `accuracy` over all records, then one accuracy per value of each meta field (keys are
    the snake_case values), then the outcome counts."""

    def aggregate(predictions: list[Prediction]) -> dict[str, float]:
        metrics = {"accuracy": accuracy(p.score for p in predictions)}
        for field in fields:
            groups = group_by(predictions, lambda p, f=field: snake(str(p.meta[f])))
            metrics |= {name: accuracy(p.score for p in preds) for name, preds in sorted(groups.items())}
        return metrics

    aggregate.__qualname__ = f"grouped_accuracy({', '.join(fields)})"
    return aggregate


def standard_counts(predictions: Iterable[Prediction], judged: bool = False) -> dict[str, float]:
    """The counts every task reports, from each record's state: `unparsed` (a reply no rule could read;
    scored wrong) and `failed` (no reply: image or request error); for judged tasks also `judge_failures`
    (grader replies that never gave a grade) and `pending` (grades the judge could not give yet)."""
    states = Counter(p.state for p in predictions)
    counts = {"unparsed": states[State.UNPARSED], "failed": states[State.FAILED]}
    if judged:
        counts |= {"judge_failures": states[State.JUDGE_FAILURE], "pending": states[State.PENDING]}
    return counts
