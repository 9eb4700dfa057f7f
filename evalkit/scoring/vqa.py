"""VQA answer normalisation and the 10-annotator accuracy: one implementation of each rule.

- `process_punctuation`, `process_digit_article`: the official VQA evaluation's steps (vqaEval.py).
- `evalai_process`: the EvalAI / M4C answer processor (TextVQA, VizWiz, submission files): lower-case,
  drop "," and "?", split "'s", then the two steps above.
- `leave_one_out`: mean over the 10 annotators of min(1, matches among the other 9 / 3).
- `vqa_official`: the official VQA v2 evaluation (master since 2021): both sides are processed only when
  the 10 answers are not all identical; otherwise the raw, stripped strings are compared.
- `vqa_submission`: LLaVA's pipeline for the published VQAv2 numbers - the reply goes through the EvalAI
  processor (convert_vqav2_for_submission), then the official evaluation (the server's).
- `m4c`: TextVQA/VizWiz (EvalAI processor on the prediction and on all answers).
- `vqa_always_processed`: lmms-eval's VQAv2 variant (both sides always processed, no EvalAI tokenising).
- `vqa_vlmeval`: VLMEvalKit's VQA score (both sides always processed, the official comma rule).

Normalisers are pure and memoised: 214k VQAv2 questions repeat a few thousand distinct answers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",",
               "?", "!")  # fmt: skip
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
COMMA_STRIP_EVALAI = re.compile(r"(?<=\d)(,)+(?=\d)")  # the EvalAI / lmms-eval processor's variant
# The official lookbehind is malformed and never blocks: every "." not followed by a digit is removed. The
# official call also passes re.UNICODE (32) as the count, so at most 32 periods go; kept for exactness.
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
PERIOD_COUNT = re.UNICODE
_WORDS = "none zero one two three four five six seven eight nine ten".split()
NUMBERS = dict(zip(_WORDS, ["0", "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"], strict=True))
ARTICLES = frozenset({"a", "an", "the"})
# The official contractions map (also in LLaVA's and lmms-eval's copies): spelling without the apostrophe
# -> the standard spelling. Kept as data: "key->value" pairs.
_CONTRACTIONS = """
aint->ain't arent->aren't cant->can't couldve->could've couldnt->couldn't couldn'tve->couldn't've
couldnt've->couldn't've didnt->didn't doesnt->doesn't dont->don't hadnt->hadn't hadnt've->hadn't've
hadn'tve->hadn't've hasnt->hasn't havent->haven't hed->he'd hed've->he'd've he'dve->he'd've hes->he's
howd->how'd howll->how'll hows->how's Id've->I'd've I'dve->I'd've Im->I'm Ive->I've isnt->isn't itd->it'd
itd've->it'd've it'dve->it'd've itll->it'll let's->let's maam->ma'am mightnt->mightn't
mightnt've->mightn't've mightn'tve->mightn't've mightve->might've mustnt->mustn't mustve->must've
neednt->needn't notve->not've oclock->o'clock oughtnt->oughtn't ow's'at->'ow's'at 'ows'at->'ow's'at
'ow'sat->'ow's'at shant->shan't shed've->she'd've she'dve->she'd've she's->she's shouldve->should've
shouldnt->shouldn't shouldnt've->shouldn't've shouldn'tve->shouldn't've somebody'd->somebodyd
somebodyd've->somebody'd've somebody'dve->somebody'd've somebodyll->somebody'll somebodys->somebody's
someoned->someone'd someoned've->someone'd've someone'dve->someone'd've someonell->someone'll
someones->someone's somethingd->something'd somethingd've->something'd've something'dve->something'd've
somethingll->something'll thats->that's thered->there'd thered've->there'd've there'dve->there'd've
therere->there're theres->there's theyd->they'd theyd've->they'd've they'dve->they'd've theyll->they'll
theyre->they're theyve->they've twas->'twas wasnt->wasn't wed've->we'd've we'dve->we'd've weve->we've
werent->weren't whatll->what'll whatre->what're whats->what's whatve->what've whens->when's whered->where'd
wheres->where's whereve->where've whod->who'd whod've->who'd've who'dve->who'd've wholl->who'll whos->who's
whove->who've whyll->why'll whyre->why're whys->why's wont->won't wouldve->would've wouldnt->wouldn't
wouldnt've->wouldn't've wouldn'tve->wouldn't've yall->y'all yall'll->y'all'll y'allll->y'all'll
yall'd've->y'all'd've y'alld've->y'all'd've y'all'dve->y'all'd've youd->you'd youd've->you'd've
you'dve->you'd've youll->you'll youre->you're youve->you've
"""
CONTRACTIONS = dict(pair.split("->") for pair in _CONTRACTIONS.split())


@lru_cache(maxsize=1 << 16)
def process_punctuation(text: str, evalai: bool = False) -> str:
    """Each listed mark is deleted when it touches a space (or the text has a digit,digit comma - the
    EvalAI processor's pattern also takes runs of commas), otherwise replaced by a space; then periods not
    followed by a digit are deleted."""
    out = text
    comma_number = (COMMA_STRIP_EVALAI if evalai else COMMA_STRIP).search(text) is not None
    for mark in PUNCTUATION:
        if (mark + " " in text or " " + mark in text) or comma_number:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return PERIOD_STRIP.sub("", out, PERIOD_COUNT)


@lru_cache(maxsize=1 << 16)
def process_digit_article(text: str) -> str:
    """Lower-case; number words zero..ten (and "none") to digits; drop a/an/the; standard contractions."""
    words = [NUMBERS.get(w, w) for w in text.lower().split()]
    words = [w for w in words if w not in ARTICLES]
    return " ".join(CONTRACTIONS.get(w, w) for w in words)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


@lru_cache(maxsize=1 << 16)
def evalai_process(text: str) -> str:
    """The EvalAI / M4C answer processor."""
    text = text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()
    return process_digit_article(process_punctuation(_clean(text), evalai=True))


def leave_one_out(prediction: str, answers: Sequence[str]) -> float:
    """Mean over annotators of min(1, how many of the other annotators gave the prediction / 3)."""
    if not answers:
        return 0.0
    total = 0.0
    same = sum(a == prediction for a in answers)
    for a in answers:
        others = same - (a == prediction)
        total += min(1.0, others / 3)
    return total / len(answers)


def vqa_official(prediction: str, answers: Sequence[str]) -> tuple[str, float]:
    """The official VQA evaluation for one question: (the compared prediction, accuracy 0..1)."""
    pred, gts = _clean(prediction), [_clean(a) for a in answers]
    if len(set(gts)) > 1:
        gts = [process_digit_article(process_punctuation(a)) for a in gts]
        pred = process_digit_article(process_punctuation(pred))
    return pred, leave_one_out(pred, gts)


def vqa_submission(prediction: str, answers: Sequence[str]) -> tuple[str, float]:
    """LLaVA's published VQAv2 numbers: the EvalAI-processed reply scored by the official evaluation."""
    return vqa_official(evalai_process(prediction), answers)


def vqa_always_processed(prediction: str, answers: Sequence[str]) -> tuple[str, float]:
    """lmms-eval's VQAv2 scoring: punctuation (its processor's comma rule) and digit/article processing
    on both sides, always."""

    def process(text: str) -> str:
        return process_digit_article(process_punctuation(_clean(text), evalai=True))

    pred = process(prediction)
    return pred, leave_one_out(pred, [process(a) for a in answers])


def vqa_vlmeval(prediction: str, answers: Sequence[str]) -> tuple[str, float]:
    """VLMEvalKit's VQA score (`vqa_eval.process_answer` + `vqa_score`): newlines and tabs to spaces, strip,
    the official punctuation step (its digit,digit comma rule), then digit/article processing, on the reply
    and on every answer, always; then the leave-one-out mean."""
    pred = process_digit_article(process_punctuation(_clean(prediction)))
    return pred, leave_one_out(pred, [process_digit_article(process_punctuation(_clean(a))) for a in answers])


def m4c(prediction: str, answers: Sequence[str]) -> tuple[str, float]:
    """TextVQA / VizWiz (M4C evaluator): the EvalAI processor on the prediction and on every answer."""
    pred = evalai_process(prediction)
    return pred, leave_one_out(pred, [evalai_process(a) for a in answers])
