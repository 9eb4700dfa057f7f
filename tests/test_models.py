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
