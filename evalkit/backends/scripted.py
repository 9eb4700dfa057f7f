"""A scripted backend: a real `Backend` that answers from a table instead of a model, like inspect_ai's
mock model. It runs the whole pipeline (batches, images decoded and put in the protocol's mode, records,
resume) in-process and instantly, so runner tests and demos need no model and no server.

From the command line: `--model scripted:replies.json`, where the file holds
`{"replies": {"<sample id>": "<reply>", ...}, "default": "<reply for other ids>"}` (`default` optional: an
id with no reply and no default is a failed sample). In code: `ScriptedBackend(lambda request: "yes")`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from evalkit.backends.base import Backend, Failure, Request
from evalkit.errors import InputError

Reply = str | Failure


class ScriptedBackend(Backend):
    def __init__(
        self, reply: Callable[[Request], Reply] | Mapping[str, str], batch_size: int = 8, source: str = ""
    ) -> None:
        self._reply = reply
        self.seen: list[Request] = []  # every request answered, in order (tests look at prompts and images)
        super().__init__(
            name="scripted", default_batch_size=batch_size, info={"source": source} if source else {}
        )

    @classmethod
    def from_file(cls, path: str | Path, batch_size: int = 8) -> ScriptedBackend:
        file = Path(path).expanduser()
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{file}: not a readable JSON replies file ({exc})") from None
        replies = data.get("replies") if isinstance(data, dict) else None
        default = data.get("default") if isinstance(data, dict) else None
        if not isinstance(replies, dict) or not all(isinstance(v, str) for v in replies.values()):
            raise InputError(f'{file}: expected {{"replies": {{"<id>": "<reply>", ...}}, "default": "..."}}')
        if default is not None and not isinstance(default, str):
            raise InputError(f"{file}: default must be text")
        table = {str(k): v for k, v in replies.items()}

        def reply(request: Request) -> Reply:
            found = table.get(request.id, default)
            return found if found is not None else Failure(f"no scripted reply for {request.id!r} in {file}")

        return cls(reply, batch_size=batch_size, source=str(file.resolve()))

    def generate(self, prepared: Any) -> list[str | Failure]:
        batch: list[Request] = prepared
        self.seen.extend(batch)
        if callable(self._reply):
            return [self._reply(r) for r in batch]
        return [self._reply.get(r.id, Failure(f"no scripted reply for {r.id!r}")) for r in batch]
