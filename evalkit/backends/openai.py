"""Any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, LMDeploy, hosted APIs).

Images go as base64 data URLs in `image_url` parts before the text part; temperature 0; several
requests in flight; the `openai` SDK retries 429/5xx/timeouts with exponential backoff, each attempt
bounded by a total deadline. A request that still fails, or an HTTP 200 answer that is no chat completion
(invalid JSON, bytes that are not UTF-8, an HTML page), becomes a `Failure` whose reason never contains
the API key. An endpoint that is not there (refused connection, unknown host) stops the run before any
sample is tried, and so does a connection error before the first reply.
"""

from __future__ import annotations

import base64
import io
import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from PIL import Image

from evalkit.backends.base import Backend, Failure, Request
from evalkit.endpoints import (
    BAD_BODY,
    FATAL_STATUS,
    check_reachable,
    completion_text,
    http_client,
    public_url,
    scrub,
)
from evalkit.errors import ConfigError
from evalkit.templates import template_system

DEFAULT_CONCURRENCY = 16


def data_url(image: Image.Image) -> str:
    """PNG (lossless) base64 data URL of an RGB image."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def chat_messages(request: Request) -> list[dict[str, Any]]:
    """The user message (images, then the prompt); a named template contributes its system prompt, the
    server's own chat template does the rest."""
    system = template_system(request.template)
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": data_url(img)}} for img in request.images
    ]
    content.append({"type": "text", "text": request.prompt})
    user = {"role": "user", "content": content}
    return [{"role": "system", "content": system}, user] if system else [user]


class OpenAIBackend(Backend):
    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = 120.0,
        max_retries: int = 5,
        api_key_env: str = "OPENAI_API_KEY",
    ) -> None:
        import openai

        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError("openai backend: give --base-url or set OPENAI_BASE_URL")
        self._key = os.environ.get(api_key_env) or "EMPTY"  # local servers accept any key
        self.model = model
        self.url = public_url(base_url)
        self.concurrency = max(1, concurrency)
        self.client = openai.OpenAI(
            api_key=self._key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client(timeout),
        )
        check_reachable(self.client, "model endpoint", base_url, self._key)
        self._answered = False  # any reply yet: a connection error before the first one stops the run
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="evalkit-openai")
        super().__init__(
            name="openai",
            default_batch_size=self.concurrency,
            info={
                "model": model,
                "base_url": public_url(base_url),
                "timeout": timeout,
                "max_retries": max_retries,
                "concurrency": self.concurrency,
            },
        )
        self.window = 2 * self.concurrency  # keep the pool busy while finished requests are written

    def prepare(self, batch: list[Request]) -> list[tuple[Request, list[dict[str, Any]]]]:
        return [(r, chat_messages(r)) for r in batch]

    def _one(self, item: tuple[Request, list[dict[str, Any]]]) -> str | Failure:
        import openai

        request, messages = item
        try:
            response = self.client.chat.completions.create(
                model=self.model, messages=messages, temperature=0.0, max_tokens=request.max_new_tokens
            )
        except openai.APIStatusError as exc:
            self._answered = True
            if exc.status_code in FATAL_STATUS:  # every request would fail the same way: stop the run
                raise ConfigError(
                    scrub(
                        f"endpoint answered HTTP {exc.status_code}, "
                        f"{FATAL_STATUS[exc.status_code]}: {exc.message}",
                        self._key,
                    )
                ) from None
            return Failure(scrub(f"HTTP {exc.status_code} from endpoint: {exc.message}", self._key))
        except openai.APITimeoutError:
            return Failure("request timed out (after retries)")
        except openai.APIConnectionError as exc:
            if not self._answered:  # nothing has ever come back: the endpoint is wrong, not busy
                raise ConfigError(
                    scrub(f"cannot reach the model endpoint at {self.url}: {exc.__cause__ or exc}", self._key)
                ) from None
            return Failure(scrub(f"connection error: {exc}", self._key))
        except BAD_BODY as exc:
            self._answered = True
            return Failure(f"the endpoint answered HTTP 200 with a body that is not JSON text ({exc})")
        self._answered = True
        text, problem = completion_text(response)
        return Failure(problem) if problem is not None else text or ""

    def submit(self, prepared: list[tuple[Request, list[dict[str, Any]]]]) -> list[Future[str | Failure]]:
        return [self._pool.submit(self._one, item) for item in prepared]

    def generate(self, prepared: list[tuple[Request, list[dict[str, Any]]]]) -> list[str | Failure]:
        return [future.result() for future in self.submit(prepared)]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
