"""Hugging Face hub ids as local folders: the cache first, a download only when the network is there, and
one line in seconds when it is not (HF_HUB_OFFLINE, or no route to the hub) instead of minutes of retries.
The commit an id resolved to is the snapshot folder's name; runs record it."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from evalkit.errors import InputError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
PROBE_SECONDS = 5.0
OTHER_FRAMEWORKS = ["*.h5", "*.msgpack", "*.ot", "*.onnx", "tf_model*", "flax_model*", "*.gguf"]


def looks_like_hub_id(text: str) -> bool:
    return bool(HUB_ID.match(text)) and not Path(text).expanduser().exists()


def offline() -> bool:
    flags = (os.environ.get(k, "") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    return any(f.strip().lower() in ("1", "true", "yes", "on") for f in flags)


def _reachable() -> bool:
    """Whether the hub answers a TCP connection within seconds (skipped behind a proxy: it may route)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname or "huggingface.co", port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def resolve(repo_id: str, revision: str | None = None, what: str = "model") -> tuple[Path, str]:
    """(local snapshot folder, commit sha) of a hub repo: from the cache, else downloaded."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    label = f"{what} {repo_id}" + (f"@{revision}" if revision else "")
    folder: str | None
    try:
        folder = snapshot_download(repo_id, revision=revision, local_files_only=True)
    except LocalEntryNotFoundError:
        folder = None
    except ValueError as exc:  # not a valid repo id (huggingface_hub's rules are stricter than the shape)
        raise InputError(f"{label}: not a valid hub id ({str(exc).splitlines()[0]})") from None
    if folder is None:
        if offline():
            raise InputError(
                f"{label} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: "
                f"download it first (hf download {repo_id}) or give a local folder"
            ) from None
        if not _reachable():
            raise InputError(
                f"{label} is not in the Hugging Face cache and the hub cannot be reached (no network?): "
                f"download it elsewhere or give a local folder"
            ) from None
        try:
            folder = snapshot_download(repo_id, revision=revision, ignore_patterns=OTHER_FRAMEWORKS)
        except (HfHubHTTPError, OSError, ValueError) as exc:
            raise InputError(f"{label}: download failed ({str(exc).splitlines()[0]})") from None
    return Path(folder), Path(folder).name
