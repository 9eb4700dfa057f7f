"""Files evalkit writes for users: whole-file atomic writes, and the lock that gives a run sole use of a
task folder.

Atomic: the content goes to a temporary file in the same folder, is forced to disk, then renamed over the
requested name, so a kill leaves either the old file or the new one, never half of one (an .xlsx, a
metrics.json, a submission file). The folder lock is an OS lock (`flock`) on `<folder>/.evalkit.lock`: it
dies with its process (a `kill -9` frees it), and the file names the holder for the message a second run
gets.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from evalkit.errors import ConfigError, OutputError

LOCK_NAME = ".evalkit.lock"
log = logging.getLogger(__name__)


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path beside `path` to write to (by any library); on success it is synced and renamed
    to `path`, on failure removed. The temporary name keeps the suffix (writers pick formats by it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
        os.close(fd)
        # mkstemp makes the file private (0600): keep the mode of the file replaced, else rw-r--r--
        os.chmod(tmp_name, path.stat().st_mode & 0o777 if path.exists() else 0o644)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        try:
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write(path: Path, text: str) -> None:
    """Write a whole text file so that a crash leaves either the old or the new content, never half."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as tmp:
        try:
            tmp.write_bytes(data)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _holder() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(sys.argv)[:300],
    }


def describe_holder(raw: bytes) -> str:
    """The lock file's note as words: "pid 4242 on node7 since 2026-11-28T10:00:00+0000 (evalkit run ...)"."""
    try:
        info = json.loads(raw.decode("utf-8"))
        return f"pid {info['pid']} on {info['host']} since {info['started']}" + (
            f" ({info['command']})" if info.get("command") else ""
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "another process"


class FolderBusy(ConfigError):
    """Another process holds the folder's lock."""


# Locks this process holds, by folder: taking one again (a run locks every task up front, then each task as
# it runs) only counts; flock itself would refuse a second open of the same file, even in one process.
_HELD: dict[str, list[int]] = {}  # folder -> [fd, count]
_HELD_LOCK = threading.Lock()
NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS}  # file systems without flock (some NFS, Lustre)


class FolderLock:
    """Sole use of a folder while held: `flock` on `<folder>/.evalkit.lock`, released on `release()`, on
    exit of a `with` block, or by the OS when the process dies. Re-entrant within a process."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._key: str | None = None

    def acquire(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{self.folder}: cannot write ({exc.strerror or exc})") from exc
        key = os.path.realpath(self.folder)
        with _HELD_LOCK:
            if key in _HELD:
                _HELD[key][1] += 1
                self._key = key
                return
            fd = self._lock()
            _HELD[key] = [fd, 1]
            self._key = key

    def _lock(self) -> int:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot write ({exc.strerror or exc})") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = describe_holder(os.pread(fd, 4096, 0))
            os.close(fd)
            raise FolderBusy(
                f"{self.folder} is in use by another evalkit run: {holder}; wait for it to finish, "
                "or give this run another --name or --output"
            ) from None
        except OSError as exc:
            if exc.errno in NO_FLOCK:  # the file system cannot lock: go on, but say so
                log.warning(
                    "%s: this file system cannot lock files; nothing stops a second run here", self.path
                )
            else:
                os.close(fd)
                raise OutputError(f"{self.path}: cannot lock the folder ({exc.strerror or exc})") from exc
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(_holder()).encode("utf-8"), 0)
        return fd

    def release(self) -> None:
        if self._key is None:
            return
        key, self._key = self._key, None
        with _HELD_LOCK:
            held = _HELD[key]
            held[1] -= 1
            if held[1] > 0:
                return
            del _HELD[key]
        fd = held[0]
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
