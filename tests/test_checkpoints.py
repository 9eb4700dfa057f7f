"""Checkpoint folders as users have them: detection from small files, one-line errors before any weight
loads, hub ids from the cache (offline in seconds), content fingerprints, and which template a model gets."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from evalkit.checkpoints import detect, fingerprint, trained_template
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.errors import ConfigError, InputError
from evalkit.models import locate, resolve_model, with_overrides
from tests.support.fixtures import write_pope
from tests.test_e2e_openai import evalkit


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "tiny-llava", seed=0)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_unknown_and_incomplete_folders_are_one_line(tiny: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(
        InputError, match=r"empty: not a checkpoint folder \(no config.json; found: notes.txt\)"
    ):
        detect(empty)
    no_weights = _copy(tiny, tmp_path / "no-weights")
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(InputError, match="a llava checkpoint without weights"):
        detect(no_weights)
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    with pytest.raises(InputError, match="LlamaForCausalLM is not an image-text-to-text model"):
        detect(lm)
    linear = tmp_path / "linear"
    linear.mkdir()
    (linear / "config.json").write_text(
        json.dumps(
            {"architectures": ["LlavaLlamaForCausalLM"], "model_type": "llava", "mm_vision_tower": "x/y"}
        )
    )
    (linear / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="mm_projector_type 'linear' is not supported"):
        detect(linear)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    with pytest.raises(InputError, match=r"bad/config.json: not valid JSON"):
        detect(bad)


def test_original_llava_config_is_not_read_as_transformers_llava(tmp_path: Path) -> None:
    """LLaVA's own checkpoints say model_type "llava", as transformers' class does: transformers builds a
    default 7B model from such a config. Detection reads the mm_* keys first."""
    folder = tmp_path / "llava-v1.5-7b"
    folder.mkdir()
    config = {
        "architectures": ["LlavaLlamaForCausalLM"],
        "model_type": "llava",
        "mm_vision_tower": "openai/clip-vit-large-patch14-336",
        "mm_projector_type": "mlp2x_gelu",
        "vocab_size": 32000,
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"weight_map": {"a": "x.bin"}}))
    found = detect(folder)
    assert (found.format, found.family, found.llm) == ("llava", "llava-1.5", "llama")
    assert found.vision_tower == "openai/clip-vit-large-patch14-336"
    (folder / "tokenizer.model").write_bytes(b"sentencepiece")
    assert trained_template(found) == "vicuna_v1"
    anyres = dict(config, image_aspect_ratio="anyres", mm_patch_merge_type="spatial_unpad")
    (folder / "config.json").write_text(json.dumps(anyres))
    assert detect(folder).family == "llava-1.6" and trained_template(detect(folder)) == "llava_v1"
    (folder / "config.json").write_text(json.dumps(dict(anyres, mm_patch_merge_type="flat")))
    with pytest.raises(ConfigError, match="only spatial_unpad"):
        detect(folder)


def test_tower_of_an_uncached_hub_id_offline_fails_in_seconds(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["Share4VLlamaForCausalLM"],
                "model_type": "share4v",
                "mm_vision_tower": "Lin-Chen/ShareGPT4V-7B_Pretrained_vit-large336-l12",
                "mm_projector_type": "mlp2x_gelu",
            }
        )
    )
    (folder / "pytorch_model.bin").write_bytes(b"")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.monotonic()
    with pytest.raises(
        InputError, match="vision tower Lin-Chen/ShareGPT4V-7B_Pretrained_vit-large336-l12 is not"
    ):
        locate(resolve_model(str(folder)))
    assert time.monotonic() - started < 10


def _hub_cache(root: Path, repo: str, source: Path, commit: str) -> None:
    """A Hugging Face cache entry as huggingface_hub writes it: blobs by hash, a snapshot of symlinks."""
    base = root / f"models--{repo.replace('/', '--')}"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snapshot = base / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (base / "blobs").mkdir()
    for i, file in enumerate(sorted(source.iterdir())):
        blob = base / "blobs" / f"{i:064x}"
        shutil.copy(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))


def test_hub_id_from_the_cache_offline_records_its_commit(tiny: Path, tmp_path: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    _hub_cache(tmp_path / "hub", "tiny-org/tiny-llava", tiny, commit)
    data = tmp_path / "data"
    write_pope(data)
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    args = ["run", "--model", "tiny-org/tiny-llava", "--tasks", "pope", "--data-root", str(data)]
    result = evalkit(*args, "--output", str(tmp_path / "out"), "--limit", "2", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "out" / "tiny-llava" / "pope" / "metrics.json").read_text())
    assert record["model_config"]["checkpoint"] == "tiny-org/tiny-llava"
    assert record["model_config"]["commit"] == commit
    manifest = json.loads((tmp_path / "out" / "tiny-llava" / "pope" / "manifest.json").read_text())
    assert manifest["model_settings"]["revision"] == commit
    started = time.monotonic()
    missing = evalkit(*args, "--model", "tiny-org/absent", "--output", str(tmp_path / "o2"), env=env)
    assert missing.returncode != 0 and time.monotonic() - started < 30
    lines = missing.stderr.strip().splitlines()
    assert lines == [
        "error: model tiny-org/absent is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
        "download it first (hf download tiny-org/absent) or give a local folder"
    ]


def test_hub_id_without_a_route_to_the_hub_fails_in_seconds(tmp_path: Path) -> None:
    """Not marked offline, but the hub does not answer (here: a closed local port as HF_ENDPOINT)."""
    env = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_HUB_CACHE": str(tmp_path / "hub")}
    env["HF_ENDPOINT"] = "http://127.0.0.1:9"
    write_pope(tmp_path / "data")
    started = time.monotonic()
    result = evalkit(
        "run", "--model", "llava-hf/llava-1.5-7b-hf", "--revision", "a272c74", "--tasks", "pope",
        "--data-root", str(tmp_path / "data"), "--output", str(tmp_path / "out"), env=env, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0 and time.monotonic() - started < 30
    assert result.stderr.strip().splitlines() == [
        "error: model llava-hf/llava-1.5-7b-hf@a272c74 is not in the Hugging Face cache and the hub cannot "
        "be reached (no network?): download it elsewhere or give a local folder"
    ]
    assert not (tmp_path / "out").exists()


def test_fingerprint_follows_content_not_the_path(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    folder = _copy(tiny, tmp_path / "ckpt")
    monkeypatch.chdir(tmp_path)
    relative = locate(resolve_model("ckpt")).settings(None)
    absolute = locate(resolve_model(str(folder))).settings(None)
    assert relative == absolute and relative["content"]
    weights = folder / "model.safetensors"  # retrained in place: new bytes, new modification time
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    retrained = locate(resolve_model(str(folder))).settings(None)["content"]
    assert retrained != relative["content"]
    big = folder / "pytorch_model.bin"  # large weight files: size and modification time
    big.write_bytes(b"\0" * (2 << 20))
    before = fingerprint(folder)
    stat = big.stat()
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert fingerprint(folder) != before


def test_retrained_checkpoint_is_refused_on_resume(tiny: Path, tmp_path: Path) -> None:
    folder = _copy(tiny, tmp_path / "ckpt")
    data = tmp_path / "data"
    write_pope(data)
    args = [
        "run",
        "--model",
        str(folder),
        "--tasks",
        "pope",
        "--data-root",
        str(data),
        "--output",
        str(tmp_path),
    ]
    assert evalkit(*args, "--limit", "2", timeout=300).returncode == 0
    config = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps(dict(config, note="retrained")))
    again = evalkit(*args, timeout=300)
    assert again.returncode != 0 and "model_settings.content" in again.stderr


def test_template_choice(tiny: Path) -> None:
    spec = locate(resolve_model(str(tiny)))  # a Llama LLaVA whose tokenizer does not say its chat format
    assert spec.template("vicuna_v1") == (True, None)
    llama3 = with_overrides(spec, trained_template="llama3")
    assert llama3.template("vicuna_v1") == (False, "llama3")  # never vicuna on a Llama-3 chat model
    assert llama3.template(None, "chat") == (True, None)  # lmms-eval: the checkpoint's chat template
    assert llama3.template(None, "trained") == (False, "llama3")  # VLMEvalKit's wrapper frames it
    native = with_overrides(spec, trained_template="native")
    assert native.template("vicuna_v1") == (False, None)
    forced = with_overrides(spec, template="gemma")
    assert forced.template("vicuna_v1") == (False, "gemma") == forced.template(None)


def test_original_llava_of_another_llm_needs_its_template_named(tmp_path: Path) -> None:
    """An original-format LLaVA on Mistral (llava-v1.6-mistral) was not trained with Vicuna's template:
    evalkit does not fall back to the protocol's vicuna_v1 but asks for one."""
    folder = tmp_path / "llava-v1.6-mistral-7b"
    folder.mkdir()
    (folder / "config.json").write_text(
        json.dumps(
            {
                "architectures": ["LlavaMistralForCausalLM"],
                "model_type": "llava_mistral",
                "mm_vision_tower": str(tmp_path),
                "mm_projector_type": "mlp2x_gelu",
            }
        )
    )
    (tmp_path / "config.json").write_text("{}")  # the tower folder
    (folder / "model.safetensors").write_bytes(b"")
    with pytest.raises(
        ConfigError, match="a mistral LLaVA whose conversation template its files do not tell"
    ):
        locate(resolve_model(str(folder)))
    named = locate(with_overrides(resolve_model(str(folder)), template="chatml"))
    assert named.template("vicuna_v1") == (False, "chatml")


def test_config_vision_tower_hub_id_comes_from_the_cache(tmp_path: Path, monkeypatch) -> None:
    """A model config naming its tower by hub id (sharegpt4v-7b, llava-v1.5-7b, ...) finds it in the cache."""
    from tests.support.seed_checkpoints import build_clip_tower, build_llava_v15

    tower = build_clip_tower(tmp_path / "clip")
    checkpoint = build_llava_v15(tmp_path / "llava-v1.5-7b", tower)
    _hub_cache(tmp_path / "hub", "openai/clip-vit-large-patch14-336", tower, "f" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    spec = with_overrides(resolve_model(str(checkpoint)), vision_tower="openai/clip-vit-large-patch14-336")
    located = locate(spec)
    assert Path(located.options["vision_tower"]).name == "f" * 40
    assert located.options["trained_template"] == "vicuna_v1"


def test_runs_made_before_content_pinning_resume(tiny: Path, tmp_path: Path) -> None:
    """A folder whose manifest predates the checkpoint fingerprint (and the tokenization setting) resumes
    under a protocol that tokenizes with the processor; the fingerprint is pinned from then on."""
    data = tmp_path / "data"
    write_pope(data)
    args = [
        "run",
        "--model",
        str(tiny),
        "--tasks",
        "pope",
        "--data-root",
        str(data),
        "--output",
        str(tmp_path),
    ]
    args += ["--protocol", "lmms-eval"]
    assert evalkit(*args, "--limit", "2", timeout=300).returncode == 0
    manifest_path = tmp_path / "tiny-llava" / "pope" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    content = manifest["model_settings"].pop("content")
    del manifest["generation"]["tokenization"]
    manifest_path.write_text(json.dumps(manifest))  # as an older evalkit wrote it
    again = evalkit(*args, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(manifest_path.read_text())["model_settings"]["content"] == content
