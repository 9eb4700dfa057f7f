"""A checkpoint's content fingerprint, cheap enough for every run: small files (configs, weight index,
tokenizer settings) by their bytes, weight files and large files by size and modification time, or
by their content hash where the Hugging Face cache names the file by it (a symlink into `blobs/`).
A checkpoint retrained in place gets a new fingerprint; the same folder given as a relative or absolute
path keeps it."""

from __future__ import annotations

import hashlib
from pathlib import Path

SMALL = 1 << 20  # files up to 1 MiB are hashed whole, weight files never (retraining rewrites them)
WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _entry(path: Path, root: Path) -> str:
    name = path.relative_to(root).as_posix()
    target = path.resolve()
    stat = target.stat()
    if path.is_symlink() and target.parent.name == "blobs":  # the hub cache names blobs by their hash
        return f"{name} blob {target.name}"
    if stat.st_size <= SMALL and not path.name.endswith(WEIGHTS):
        return f"{name} sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}"
    return f"{name} size {stat.st_size} mtime {stat.st_mtime_ns}"


def fingerprint(folder: Path, depth: int = 1) -> str:
    """sha256 over the folder's files (and those of its sub-folders, `depth` levels down), by name."""
    root = Path(folder).expanduser().resolve()
    files: list[Path] = []
    level = [root]
    for _ in range(depth + 1):
        below: list[Path] = []
        for d in level:
            for p in sorted(d.iterdir()):
                if p.name.startswith("."):
                    continue
                (below if p.is_dir() else files).append(p)
        level = below
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update((_entry(f, root) + "\n").encode())
    return digest.hexdigest()[:16]
