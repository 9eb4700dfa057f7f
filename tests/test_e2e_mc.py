"""SEED-Bench image, ScienceQA-IMG and Q-Bench end to end: the CLI and the openai backend against a real
HTTP server on 127.0.0.1 whose 'model' reads the image's colour and answers in a scripted style per question,
under both protocols; prompts, generation limits, images, metrics and unparsed counts checked by hand."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from evalkit.protocols import VICUNA_SYSTEM
from tests.support.fixtures_mc import write_qbench, write_seed, write_sqa
from tests.support.openai_server import FakeOpenAIServer, image_bytes, last_user_text
from tests.test_e2e_openai import evalkit, load_jsonl, run_args, seen_colour

MC = "\nAnswer with the option's letter from the given choices directly."
TASKS = "seed_image,scienceqa_img,qbench_dev"

# How the scripted model words its answer, per question (a marker unique to the question's text).
STYLES: dict[str, Callable[[str, str], str]] = {
    # SEED-Bench
    "picture 101?": lambda letter, text: letter,
    "picture 102?": lambda letter, text: f"{letter}.",
    "picture 103?": lambda letter, text: f"{letter.lower()}. {text}",
    "picture 104?": lambda letter, text: "B",  # the answer is A: a wrong letter
    "picture 105?": lambda letter, text: f"The colour is {text}",
    # ScienceQA
    "figure 1?": lambda letter, text: letter,
    "figure 2?": lambda letter, text: f"{letter}. {text}",
    "figure 3?": lambda letter, text: f"The answer is {letter}.",
    "figure 4?": lambda letter, text: letter.lower(),
    "figure 8?": lambda letter, text: f"{letter}.{text}",
    # Q-Bench
    "Is the image red?": lambda letter, text: letter,
    "image 2?": lambda letter, text: text,
    "image 3?": lambda letter, text: f"The answer is {letter}.",
    "Is the image blue?": lambda letter, text: "Hard to say.",
    "image 5?": lambda letter, text: f"{letter}) {text}",
}


def scripted_reply(body: dict) -> str:
    """Finds the right option from the image's colour, then words it as STYLES says for the question."""
    prompt = last_user_text(body)
    colour = seen_colour(body)
    options = dict(re.findall(r"^([A-E])\. (.*)$", prompt, flags=re.MULTILINE))
    asked = re.search(r"Is the image (\w+)\?", prompt)
    truth = ("Yes" if asked.group(1) == colour else "No") if asked else colour
    letter = next(k for k, v in options.items() if v == truth)
    (style,) = [s for marker, s in STYLES.items() if marker in prompt]
    return style(letter, truth)


EXPECTED = {
    "llava": {
        # 101 right; 102 "B.", 103 "d. green" and 105 a sentence are unparsed (exact letter only); 104 wrong
        "seed_image": {
            "accuracy": 20.0,
            "scene_understanding": 50.0,
            "instance_attributes": 0.0,
            "instance_location": 0.0,
            "text_understanding": 0.0,
            "unparsed": 3,
            "failed": 0,
        },
        # 1 "A", 2 "C. blue", 3 "The answer is B." right; 4 "d" and 8 "B.red" unparsed
        "scienceqa_img": {"accuracy": 60.0, "unparsed": 2, "failed": 0},
        # 0 "A", 1 "blue" (option text), 2 "The answer is D.", 4 "B) red" right; 3 unparsed
        "qbench_dev": {
            "accuracy": 80.0,
            "yes_no": 50.0,
            "how": 100.0,
            "what": 100.0,
            "global_distortion": 100.0,
            "global_others": 100.0,
            "local_distortion": 100.0,
            "local_others": 0.0,
            "unparsed": 1,
            "failed": 0,
        },
    },
    "lmms-eval": {
        # first character: 101, 102, 103 right; 104 wrong; 105 reads "T", wrong but parsed
        "seed_image": {
            "accuracy": 60.0,
            "scene_understanding": 100.0,
            "instance_attributes": 100.0,
            "instance_location": 0.0,
            "text_understanding": 0.0,
            "unparsed": 0,
            "failed": 0,
        },
        # 1, 2 ("C." then text), 4 ("d"), 8 ("B.red") right; 3 "The answer is B." unparsed
        "scienceqa_img": {"accuracy": 80.0, "unparsed": 1, "failed": 0},
        # 0 "A" and 2 "... D " right; "blue", "Hard to say." and "B) red" give MMMU nothing (under 6 words)
        "qbench_dev": {
            "accuracy": 40.0,
            "yes_no": 50.0,
            "how": 0.0,
            "what": 50.0,
            "global_distortion": 50.0,
            "global_others": 0.0,
            "local_distortion": 100.0,
            "local_others": 0.0,
            "unparsed": 3,
            "failed": 0,
        },
    },
}
PROMPTS = {  # one prompt per task, as the server received it
    "llava": {
        "seed_image": "Which colour fills picture 102?\nA. green\nB. blue\nC. red\nD. yellow" + MC,
        "scienceqa_img": "Which colour is shown in figure 1?\nA. red\nB. blue" + MC,
        "qbench_dev": "How is the colour of image 2?\nChoose between one of the options as follows:\n"
        "A. red\nB. blue\nC. green\n",
    },
    "lmms-eval": {
        "seed_image": "Which colour fills picture 102?\nA. green\nB. blue\nC. red\nD. yellow" + MC,
        "scienceqa_img": "Context: The figure is one flat colour.\nWhich colour is shown in figure 2?\n"
        "A. green\nB. yellow\nC. blue" + MC,
        "qbench_dev": "How is the colour of image 2?\nA. red\nB. blue\nC. green" + MC + "\n",
    },
}
MAX_TOKENS = {
    "llava": {"picture": 128, "figure": 1024, "image": 1024},
    "lmms-eval": {"picture": 1024, "figure": 16, "image": 32},
}


@pytest.mark.parametrize("protocol", ["llava", "lmms-eval"])
def test_mc_tasks_end_to_end(protocol: str, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for write in (write_seed, write_sqa, write_qbench):
        write(root)
    with FakeOpenAIServer(scripted_reply) as server:
        result = evalkit(*run_args(server, root, tmp_path / "out", TASKS, "--protocol", protocol))
        assert result.returncode == 0, result.stderr
        bodies = server.bodies
    assert len(bodies) == 5 + 5 + 5  # SEED video rows and SQA's imageless / other-split problems never sent
    prompts = [last_user_text(b) for b in bodies]
    assert all(p in prompts for p in PROMPTS[protocol].values())
    for body, prompt in zip(bodies, prompts, strict=True):
        kind = "picture" if "picture" in prompt else "figure" if "figure" in prompt else "image"
        assert body["max_tokens"] == MAX_TOKENS[protocol][kind] and body["temperature"] == 0
        systems = [m["content"] for m in body["messages"] if m["role"] == "system"]
        assert systems == ([VICUNA_SYSTEM] if protocol == "llava" else [])
        (data,) = image_bytes(body)
        size = Image.open(io.BytesIO(data)).size
        # only SEED under llava is padded to a square; crop (SQA, Q-Bench) and native send the 40x24 image
        assert size == ((40, 40) if protocol == "llava" and kind == "picture" else (40, 24))

    run = tmp_path / "out" / "tiny-test"
    for task, expected in EXPECTED[protocol].items():
        record = json.loads((run / task / "metrics.json").read_text())
        assert record["metrics"] == expected, task
        assert record["primary"] == "accuracy" and record["protocol"] == protocol and record["n"] == 5
        records = load_jsonl(run / task / "predictions.jsonl")
        assert sum(r["parse"] == "unparsed" for r in records) == expected["unparsed"]
        assert all(r["prompt"] in prompts for r in records)
