"""Stop tokens (a config's list, else every EOS id), no double BOS from a chat template, one-line load
errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evalkit.backends.base import Request
from evalkit.backends.hf import HFBackend
from evalkit.demo.tiny_model import build_tiny_llava
from evalkit.errors import ConfigError
from tests.support.fixtures import image


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llava(tmp_path_factory.mktemp("tiny") / "tiny-llava", seed=0)


def _request(max_new_tokens: int = 12) -> Request:
    return Request("a", [image("red", (32, 32))], "Is the image red?", max_new_tokens, "vicuna_v1")


def _ids(backend: HFBackend) -> list[int]:
    inputs, limit, _ = backend.prepare([_request()])
    return backend.model.generate(
        **inputs, do_sample=False, max_new_tokens=limit, pad_token_id=backend.pad_id
    )[0, inputs["input_ids"].shape[1] :].tolist()


def test_config_stop_tokens_end_the_reply(tiny: Path) -> None:
    plain = HFBackend(tiny, dtype="float32", device="cpu")
    assert plain.stop_ids == {plain.tokenizer.eos_token_id}  # default: the EOS ids it names
    ids = _ids(plain)
    stop_at = next(i for i, t in enumerate(ids) if i >= 2 and t not in ids[:i])  # a token not seen before
    token = plain.tokenizer.convert_ids_to_tokens(ids[stop_at])
    stopped = HFBackend(tiny, dtype="float32", device="cpu", stop=[token])
    [text] = stopped.generate(stopped.prepare([_request()]))
    assert text == plain.tokenizer.decode(ids[:stop_at], skip_special_tokens=True)
    assert set(stopped.describe()["stop"]) == {token, plain.tokenizer.eos_token}  # added to EOS, not instead
    with pytest.raises(ConfigError, match="stop token '<\\|eot_id\\|>' is not a token"):
        HFBackend(tiny, dtype="float32", device="cpu", stop=["<|eot_id|>"])


def test_template_stop_strings_that_are_tokens_stop_too(tiny: Path) -> None:
    backend = HFBackend(tiny, dtype="float32", device="cpu")
    assert backend.template_stops("llama3") == set()  # <|eot_id|> is no token of this tokenizer
    assert backend.template_stops("vicuna_v1") == set()


def test_chat_template_bos_is_not_doubled(tiny: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny, tmp_path / "bos")
    template = (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").write_text("{{ bos_token }}" + template)
    backend = HFBackend(folder, dtype="float32", device="cpu")
    request = Request("a", [image("red", (32, 32))], "Is it red?", 4, None)
    assert backend.render(request).startswith("<s>")
    inputs, _, _ = backend.prepare([request])
    ids = inputs["input_ids"][0].tolist()
    assert ids[0] == backend.tokenizer.bos_token_id and ids[1] != backend.tokenizer.bos_token_id


def test_missing_weights_and_remote_code_are_one_line(tiny: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(tiny, tmp_path / "partial")
    from safetensors.torch import load_file, save_file

    state = load_file(folder / "model.safetensors")
    dropped = next(k for k in state if "projector" in k)
    del state[dropped]
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ConfigError, match=r"weights missing for .*refusing random weights"):
        HFBackend(folder, dtype="float32", device="cpu")
    remote = shutil.copytree(tiny, tmp_path / "remote")
    config = json.loads((remote / "config.json").read_text())
    config.update(model_type="my_vlm", auto_map={"AutoModelForImageTextToText": "modeling_my.MyVLM"})
    (remote / "config.json").write_text(json.dumps(config))
    from evalkit.models import locate, resolve_model

    with pytest.raises(
        ConfigError, match="runs its own Python code; review it, then pass --trust-remote-code"
    ):
        locate(resolve_model(str(remote)))


def test_llava_processor_without_patch_size_is_completed_from_the_model(tiny: Path, tmp_path: Path) -> None:
    """Processors saved before transformers expanded image tokens in the processor (early llava-hf and
    xtuner -transformers uploads) lack patch_size; they run, with the outputs of a complete one."""
    folder = shutil.copytree(tiny, tmp_path / "old-processor")
    processor = json.loads((folder / "processor_config.json").read_text())
    for key in ("patch_size", "vision_feature_select_strategy", "num_additional_image_tokens"):
        processor.pop(key)
    (folder / "processor_config.json").write_text(json.dumps(processor))
    batch = [_request(6)]
    old = HFBackend(folder, dtype="float32", device="cpu")
    complete = HFBackend(tiny, dtype="float32", device="cpu")
    assert old.generate(old.prepare(batch)) == complete.generate(complete.prepare(batch))
