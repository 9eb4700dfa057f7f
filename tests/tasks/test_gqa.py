"""GQA test-dev balanced: readers for the release file and the HF snapshot, prompts, both exact-match
rules and the per-structural-type aggregate worked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.data.readers import Sample
from evalkit.errors import InputError
from evalkit.protocols import PROTOCOLS
from evalkit.registry import get_task
from evalkit.runner import make_prediction
from tests.support.fixtures_vqa2 import gqa_items, write_gqa, write_gqa_parquet

GQA = get_task("gqa")
SHORT = "\nAnswer the question using a single word or phrase."


def _samples(root: Path) -> dict[str, Sample]:
    return {s.id: s for s in GQA.load(write_gqa(root)).samples}


def test_release_file_reads_balanced_questions(tmp_path: Path) -> None:
    ds = GQA.load(write_gqa(tmp_path))
    assert ds.format == "authors"
    ids = [s.id for s in ds.samples]
    assert ids == [i.qid for i in gqa_items() if i.balanced]  # 20999999 (isBalanced false) is not scored
    first = ds.samples[0]
    assert (first.question, first.target) == ("Is the picture red?", "yes")
    assert first.meta == {"structural": "verify", "semantic": "attr", "image_id": "n161313"}
    assert first.images[0].path.endswith("gqa/images/n161313.jpg")
    assert ds.samples[1].images == first.images  # two questions on one image


def test_snapshot_reads_the_same_samples(tmp_path: Path) -> None:
    write_gqa(tmp_path / "a")
    write_gqa_parquet(tmp_path / "b")
    authors = GQA.load(tmp_path / "a" / "gqa")
    snapshot = GQA.load(tmp_path / "b" / "gqa")
    assert snapshot.format == "hf-parquet"
    key = lambda s: (s.id, s.question, s.target, s.meta)  # noqa: E731
    assert [key(s) for s in snapshot.samples] == [key(s) for s in authors.samples]
    # the image comes from the images config, by imageId
    refs = {s.id: s.images[0] for s in snapshot.samples}
    assert refs["201307251"] == refs["201640614"] and refs["201307251"].path.endswith(
        "testdev_balanced_images/testdev-00000-of-00001.parquet"
    )


def test_a_question_without_a_structural_type_is_named(tmp_path: Path) -> None:
    folder = write_gqa(tmp_path)
    path = folder / "testdev_balanced_questions.json"
    data = json.loads(path.read_text())
    data["2063234"]["types"] = {}
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"question 2063234: no types\.structural"):
        GQA.load(folder)


def test_prompts_per_protocol(tmp_path: Path) -> None:
    sample = _samples(tmp_path)["201640614"]
    llava, lmms = GQA.variant("llava"), GQA.variant("lmms-eval")
    assert llava.prompt(sample) == lmms.prompt(sample) == "Who is wearing the dress?" + SHORT
    assert (llava.max_new_tokens, llava.image_mode) == (128, "pad")
    assert (lmms.max_new_tokens, lmms.image_mode) == (16, "native")


# (qid, reply, llava answer, llava right, lmms-eval answer, lmms-eval right)
# llava: reply.rstrip('.').lower() == answer (raw); lmms-eval: both sides lower-cased, punctuation deleted
REPLIES = [
    ("201307251", "Yes.", "yes", 1.0, "yes", 1.0),  # verify
    ("201640614", "The woman.", "the woman", 0.0, "the woman", 0.0),  # query: extra word in both
    ("202225914", "Blue!", "blue!", 0.0, "blue", 1.0),  # choose: only lmms-eval deletes "!"
    ("20968379", "no", "no", 1.0, "no", 1.0),  # logical
    ("201497368", "", None, 0.0, None, 0.0),  # compare: empty reply, unparsed
    ("2063234", "T-shirt...", "t-shirt", 1.0, "tshirt", 1.0),  # query: "t-shirt" vs "tshirt" on both sides
]


@pytest.mark.parametrize(("qid", "reply", "llava", "llava_score", "lmms", "lmms_score"), REPLIES)
def test_scores_per_protocol(
    qid: str,
    reply: str,
    llava: str | None,
    llava_score: float,
    lmms: str | None,
    lmms_score: float,
    tmp_path: Path,
) -> None:
    sample = _samples(tmp_path)[qid]
    got_llava = GQA.variant("llava").score(reply, sample)
    got_lmms = GQA.variant("lmms-eval").score(reply, sample)
    assert (got_llava.answer, got_llava.score) == (llava, llava_score)
    assert (got_lmms.answer, got_lmms.score) == (lmms, lmms_score)


@pytest.mark.parametrize(
    ("protocol", "expected"),
    [
        # right: verify, logical, query 2063234 -> 3/6 = 50%; query 1 of 2 = 50%; choose, compare 0
        (
            "llava",
            {
                "accuracy": 50.0,
                "choose": 0.0,
                "compare": 0.0,
                "logical": 100.0,
                "query": 50.0,
                "verify": 100.0,
            },
        ),
        # lmms-eval also gets choose ("Blue!" -> "blue"): 4/6 = 66.666667%
        (
            "lmms-eval",
            {
                "accuracy": 66.666667,
                "choose": 100.0,
                "compare": 0.0,
                "logical": 100.0,
                "query": 50.0,
                "verify": 100.0,
            },
        ),
    ],
)
def test_aggregate_by_hand(protocol: str, expected: dict[str, float], tmp_path: Path) -> None:
    by_id = _samples(tmp_path)
    variant = GQA.variant(protocol)
    records = [
        make_prediction(GQA, variant, PROTOCOLS[protocol], by_id[qid], "", reply)
        for qid, reply, *_ in REPLIES
    ]
    assert GQA.aggregate_for("llava")(records) == expected | {"unparsed": 1, "failed": 0}
