"""MODEL resolution: model configs (EVALKIT_CONFIGS), checkpoint folders, openai:<id>, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.errors import ConfigError
from evalkit.models import resolve_model
from tests.support.fixtures import write_pope
from tests.support.openai_server import FakeOpenAIServer
from tests.test_e2e_openai import colour_reply, evalkit


def test_config_drives_backend_endpoint_and_protocol(tmp_path: Path) -> None:
    write_pope(tmp_path / "data")
    configs = tmp_path / "cfg" / "models"
    configs.mkdir(parents=True)
    with FakeOpenAIServer(colour_reply) as server:
        base_url = server.base_url
        (configs / "served.yaml").write_text(
            f"backend: openai\nmodel: served-model\nbase_url: {server.base_url}\nprotocol: lmms-eval\n"
        )
        listed = evalkit("list", "models", env={"EVALKIT_CONFIGS": str(tmp_path / "cfg")})
        assert "served" in listed.stdout
        result = evalkit(
            "run",
            "--model",
            "served",
            "--tasks",
            "pope",
            "--data-root",
            str(tmp_path / "data"),
            "--output",
            str(tmp_path / "out"),
            env={"EVALKIT_CONFIGS": str(tmp_path / "cfg")},
        )
        assert result.returncode == 0, result.stderr
        assert {b["model"] for b in server.bodies} == {"served-model"}
    record = json.loads((tmp_path / "out" / "served" / "pope" / "metrics.json").read_text())
    assert record["protocol"] == "lmms-eval" and record["model"] == "served"
    assert record["model_config"]["base_url"] == base_url


def test_malformed_config_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bad.yaml").write_text("backend: [unclosed\n")
    monkeypatch.setenv("EVALKIT_CONFIGS", str(tmp_path))
    with pytest.raises(ConfigError, match=r"bad\.yaml: malformed YAML"):
        resolve_model("bad")


def test_folder_and_openai_and_unknown(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)).backend == "hf"
    spec = resolve_model("openai:org/model-7b")
    assert (spec.backend, spec.target, spec.name) == ("openai", "org/model-7b", "org-model-7b")
    with pytest.raises(ConfigError, match="not a config"):
        resolve_model("no-such-model")


def test_every_shipped_config_resolves_and_is_listed() -> None:
    """Each config in configs/models/ loads through the code `--model NAME` runs (no download: locating
    a hub checkpoint happens later) and names what the zoo tables need."""
    from evalkit.models import describe_configs, list_configs

    shipped = {n: p for n, p in list_configs().items() if "configs/models" in str(p)}
    seeds = {"sharegpt4v-7b", "sharegpt4v-13b", "llava-v1.5-7b", "llava-v1.5-13b", "llava-v1.5-7b-hf",
             "llava-v1.5-13b-hf", "llava-v1.6-vicuna-7b", "llava-llama-3-8b-v1_1",
             "llava-llama-3-8b-v1_1-hf", "llava-llama-3-8b-v1_1-transformers"}  # fmt: skip
    assert seeds <= set(shipped)
    for name in shipped:
        spec = resolve_model(name)
        assert spec.options.get("display_name") and spec.options.get("llm"), name
        if spec.backend == "hf":
            assert spec.options.get("dtype") in ("float16", "bfloat16"), name
            assert spec.options.get("trained_template") or spec.options.get("template"), name
            assert spec.options.get("format") in ("transformers", "llava", "xtuner"), name
    rows = {row[0]: row for row in describe_configs()}
    assert rows["llava-llama-3-8b-v1_1"][1:4] == ("xtuner-llava", "xtuner", "llama3")
    assert rows["sharegpt4v-7b"][4] == "Lin-Chen/ShareGPT4V-7B@main"
    assert resolve_model("llava-llama-3-8b-v1_1").options["stop"] == ["<|eot_id|>"]


def test_config_template_stop_and_image_mode_reach_the_run(tmp_path: Path) -> None:
    from evalkit.demo.tiny_model import build_tiny_llava

    checkpoint = build_tiny_llava(tmp_path / "tiny", seed=0)
    write_pope(tmp_path / "data")
    configs = tmp_path / "cfg" / "models"
    configs.mkdir(parents=True)
    (configs / "mine.yaml").write_text(
        f"checkpoint: {checkpoint}\ntrained_template: native\nstop: ['</s>']\n"
        "image_mode: {llava: native, lmms-eval: pad}\ndisplay_name: Mine\nllm: Tiny\n"
    )
    env = {"EVALKIT_CONFIGS": str(tmp_path / "cfg")}
    args = [
        "run",
        "--model",
        "mine",
        "--tasks",
        "pope",
        "--data-root",
        str(tmp_path / "data"),
        "--limit",
        "2",
    ]
    result = evalkit(*args, "--output", str(tmp_path / "out"), env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "model ran on cpu in float32" in result.stdout  # the device and dtype chosen, said
    record = json.loads((tmp_path / "out" / "mine" / "pope" / "metrics.json").read_text())
    # trained with its own chat template: protocol llava does not put vicuna_v1 on it
    assert record["generation"]["template"] == "model chat template"
    assert record["generation"]["image_mode"] == "native" and record["model_config"]["stop"] == ["</s>"]
    forced = evalkit(*args, "--template", "vicuna_v1", "--output", str(tmp_path / "o2"), env=env, timeout=300)
    assert forced.returncode == 0, forced.stderr
    again = json.loads((tmp_path / "o2" / "mine" / "pope" / "metrics.json").read_text())
    assert again["generation"]["template"] == "vicuna_v1"
    (configs / "mine.yaml").write_text(f"checkpoint: {checkpoint}\nimage_mode: square\n")
    bad = evalkit(*args, "--output", str(tmp_path / "o3"), env=env, timeout=300)
    assert bad.returncode != 0 and "image_mode 'square' for mine: one of pad, crop, native" in bad.stderr
