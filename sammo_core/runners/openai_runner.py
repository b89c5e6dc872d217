"""An OpenAI-compatible runner: OpenAI, Azure OpenAI, or any server speaking chat completions.

:class:`OpenAIRunner` maps an :class:`~sammo_core.runners.base.LLMRequest` to one chat-completions
call (``POST /chat/completions`` through the openai client) and the answer to an
:class:`~sammo_core.runners.base.LLMResult` with the server's exact token usage. Its behaviour
under load and failure is explicit: the client's own retries are off; a
:class:`~sammo_core.runners.retry.RetryPolicy` retries 429s, 5xx, timeouts, dropped connections
and bodies that are not JSON; a :class:`~sammo_core.runners.throttle.Limiter` bounds concurrent
calls and, optionally, requests and tokens per minute; the HTTP connection pool is sized to the
concurrency.

``openai`` is imported when a runner is built, not when this module is imported. The API key is
never shown: not in ``repr``, not in errors.

>>> import asyncio
>>> from sammo_core.testing.chat_server import ChatServer
>>> async def ask(base_url: str) -> LLMResult:
...     async with OpenAIRunner("test-model", base_url=base_url) as runner:
...         return await runner.generate(LLMRequest.from_prompt("Hi there"))
>>> with ChatServer() as server:
...     result = asyncio.run(ask(server.base_url))
>>> (result.text, result.prompt_tokens, result.completion_tokens, result.model)
('echo: Hi there', 2, 4, 'test-model')
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import os
import urllib.parse
from collections import Counter
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import orjson

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import LLMRequest, LLMResult, Runner
from sammo_core.runners.retry import (
    RetryableError,
    RetryEvent,
    RetryPolicy,
    parse_retry_after,
    with_retries,
)
from sammo_core.runners.throttle import Limiter, ThrottleStats, estimate_tokens
from sammo_core.tokens import count_tokens

if TYPE_CHECKING:
    import openai

__all__ = ["DEFAULT_BASE_URL", "OpenAIRunner", "OpenAIRunnerStats"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client insists on one.
_PLACEHOLDER_KEY = "sk-local-endpoint-needs-no-key"
_MAX_DETAIL = 300


def _is_local(url: str) -> bool:
    """Whether ``url`` points at this machine (loopback address or ``localhost``)."""
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class _Endpoint:
    kind: Literal["openai", "azure"]
    url: str
    api_key: str = dataclasses.field(repr=False)
    api_version: str | None
    key_hint: str


def _resolve_endpoint(
    base_url: str | None,
    api_key: str | None,
    azure_endpoint: str | None,
    api_version: str | None,
) -> _Endpoint:
    """Arguments first, then the environment; fail early with the fix in the message."""
    env = os.environ
    if base_url is not None and azure_endpoint is not None:
        raise ConfigError("pass base_url=... (OpenAI-compatible) or azure_endpoint=..., not both")
    if base_url is None and azure_endpoint is None:
        azure_endpoint = env.get("AZURE_OPENAI_ENDPOINT") or None
    if azure_endpoint is not None:
        kind: Literal["openai", "azure"] = "azure"
        url = azure_endpoint.rstrip("/")
        api_key = api_key or env.get("AZURE_OPENAI_API_KEY")
        api_version = api_version or env.get("OPENAI_API_VERSION")
        key_hint = "set AZURE_OPENAI_API_KEY or pass api_key=..."
        if not api_version:
            raise ConfigError(
                f"the Azure endpoint {url} needs an API version: set OPENAI_API_VERSION or pass "
                "api_version=... (e.g. '2024-10-21')"
            )
    else:
        kind = "openai"
        url = (base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        api_key = api_key or env.get("OPENAI_API_KEY")
        key_hint = "set OPENAI_API_KEY or pass api_key=..."
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(f"the endpoint URL must start with http:// or https://; got {url!r}")
    if not api_key:
        if not _is_local(url):
            raise ConfigError(f"no API key for {url}: {key_hint}")
        api_key = _PLACEHOLDER_KEY
    return _Endpoint(kind, url, api_key, api_version, key_hint)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenAIRunnerStats:
    """What an :class:`OpenAIRunner` has done so far.

    ``retry_reasons`` counts retried failures by kind: ``rate_limited``, ``server_error``,
    ``timeout``, ``connection``, ``bad_response``.
    """

    calls: int
    succeeded: int
    failed: int
    attempts: int
    retries: int
    prompt_tokens: int
    completion_tokens: int
    retry_reasons: dict[str, int]
    throttle: ThrottleStats


class OpenAIRunner(Runner):
    """Chat completions from OpenAI, Azure OpenAI or any OpenAI-compatible server.

    Args:
        model: the model (Azure: the deployment) name.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``; default ``OPENAI_BASE_URL``,
            else OpenAI's.
        api_key: default ``OPENAI_API_KEY`` (Azure: ``AZURE_OPENAI_API_KEY``). A loopback
            endpoint needs none; any other endpoint without one is a :class:`ConfigError`.
        timeout: seconds to wait for connecting and for each read of one attempt.
        retry: when and how long to retry (default ``RetryPolicy()``).
        max_concurrency: the most calls in flight at once (also the connection pool's size).
        requests_per_minute, tokens_per_minute: optional rate limits; a request is charged its
            prompt tokens plus ``max_tokens`` (256 when unset).
        azure_endpoint: use Azure OpenAI at this endpoint (default ``AZURE_OPENAI_ENDPOINT``
            when ``base_url`` is not given).
        api_version: the Azure API version (default ``OPENAI_API_VERSION``).
        extra_body: extra JSON fields sent with every request (server-specific options).

    Connections are opened on first use in an event loop and closed by ``async with``,
    :meth:`aclose`, or at the latest when ``asyncio.run()`` finishes; a runner may serve one loop
    after another (``generate_sync`` works repeatedly).

    A request with ``mode="completion"`` (a base model) goes to ``POST /completions`` instead,
    the endpoint vLLM and llama.cpp's server offer for base models: its ``prompt`` is the
    request's ``prompt_text`` as it is, and the answer is read from ``choices[0].text``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        max_concurrency: int = 32,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        azure_endpoint: str | None = None,
        api_version: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        try:  # imported here, not at module level, so that importing sammo_core stays light
            import openai  # noqa: F401
        except ImportError as exc:
            raise ConfigError("OpenAIRunner needs the openai package: pip install openai") from exc
        if not model:
            raise ConfigError("model must name a model (Azure: a deployment); got ''")
        if not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds; got {timeout}")
        self.model = model
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.extra_body = dict(extra_body) if extra_body else None
        self._endpoint = _resolve_endpoint(base_url, api_key, azure_endpoint, api_version)
        self.limiter = Limiter(max_concurrency, requests_per_minute, tokens_per_minute)
        self._rng = self.retry.make_rng(model)
        # Azure names the deployment in the path (the client adds /openai and the api-version).
        self._path = (
            f"/deployments/{urllib.parse.quote(model, safe='')}/chat/completions"
            if self._endpoint.kind == "azure"
            else "/chat/completions"
        )
        # Completion-mode requests (base models) go to the legacy completions endpoint, which
        # vLLM and llama.cpp's server serve: the prompt is sent as is, with no chat template.
        self._completions_path = self._path.removesuffix("/chat/completions") + "/completions"
        self._client: openai.AsyncOpenAI | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._closer: asyncio.Task[None] | None = None
        self._calls = self._succeeded = self._failed = self._attempts = self._retries = 0
        self._prompt_tokens = self._completion_tokens = 0
        self._retry_reasons: Counter[str] = Counter()

    @property
    def base_url(self) -> str:
        """The endpoint (Azure: the resource endpoint), without the key."""
        return self._endpoint.url

    @property
    def max_concurrency(self) -> int:
        return self.limiter.max_concurrency

    def __repr__(self) -> str:
        azure = (
            f", api_version={self._endpoint.api_version!r}"
            if self._endpoint.kind == "azure"
            else ""
        )
        return (
            f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}{azure}, "
            f"max_concurrency={self.max_concurrency}, retry={self.retry!r})"
        )

    @property
    def stats(self) -> OpenAIRunnerStats:
        return OpenAIRunnerStats(
            calls=self._calls,
            succeeded=self._succeeded,
            failed=self._failed,
            attempts=self._attempts,
            retries=self._retries,
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._completion_tokens,
            retry_reasons=dict(self._retry_reasons),
            throttle=self.limiter.stats,
        )

    # -- the client --------------------------------------------------------------------------

    def _make_client(self) -> openai.AsyncOpenAI:
        import httpx2
        import openai

        endpoint = self._endpoint
        # Size the pool to the concurrency: the default keeps too few idle connections, and
        # every request beyond them would pay for a new connection.
        http_client = openai.DefaultAsyncHttpxClient(
            limits=httpx2.Limits(
                max_connections=self.max_concurrency,
                max_keepalive_connections=self.max_concurrency,
            ),
            timeout=self.timeout,
        )
        if endpoint.kind == "azure":
            return openai.AsyncAzureOpenAI(
                azure_endpoint=endpoint.url,
                api_version=endpoint.api_version,
                api_key=endpoint.api_key,
                timeout=self.timeout,
                max_retries=0,
                http_client=http_client,
            )
        return openai.AsyncOpenAI(
            base_url=endpoint.url,
            api_key=endpoint.api_key,
            timeout=self.timeout,
            max_retries=0,
            http_client=http_client,
        )

    def _client_for_this_loop(self) -> openai.AsyncOpenAI:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            # Connections belong to the loop that opened them: a new loop gets a new client.
            client = self._make_client()
            self._client, self._client_loop = client, loop
            self._closer = loop.create_task(self._close_when_cancelled(client))
        return self._client

    async def _close_when_cancelled(self, client: openai.AsyncOpenAI) -> None:
        """Wait until cancelled, then close ``client``.

        ``asyncio.run()`` cancels leftover tasks before it closes its loop, so a runner used
        without ``async with`` or :meth:`aclose` still closes its connections in time.
        """
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if self._client is client:
                self._client = self._client_loop = self._closer = None
            await client.close()

    async def aclose(self) -> None:
        """Close the HTTP connections; a later call opens new ones."""
        closer = self._closer
        if closer is not None and not closer.done():
            closer.cancel()
            await asyncio.wait([closer])

    async def __aenter__(self) -> OpenAIRunner:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- one call ----------------------------------------------------------------------------

    @property
    def _describe(self) -> str:
        return f"model {self.model!r} at {self.base_url}"

    async def generate(self, request: LLMRequest) -> LLMResult:
        client = self._client_for_this_loop()
        tokens = estimate_tokens(request)
        body = self._body(request)
        self._calls += 1

        async def attempt() -> LLMResult:
            self._attempts += 1
            async with self.limiter.slot(tokens):
                content = await self._post(client, body, self._path_for(request))
            return self._to_result(request, content)

        try:
            result = await with_retries(
                attempt, self.retry, self._describe, rng=self._rng, on_retry=self._on_retry
            )
        except RunnerError:
            self._failed += 1
            raise
        self._succeeded += 1
        self._prompt_tokens += result.prompt_tokens
        self._completion_tokens += result.completion_tokens
        return result

    def _on_retry(self, event: RetryEvent) -> None:
        self._retries += 1

    def _path_for(self, request: LLMRequest) -> str:
        """``/chat/completions`` for chat requests, ``/completions`` for completion mode."""
        return self._completions_path if request.mode == "completion" else self._path

    def _body(self, request: LLMRequest) -> bytes:
        """The JSON body; unset options are left out, not sent as null.

        Chat requests carry ``messages``; completion-mode requests carry ``prompt`` (the
        messages' text as :attr:`~sammo_core.runners.base.LLMRequest.prompt_text`).
        """
        body: dict[str, Any] = {"model": self.model}
        if request.mode == "completion":
            body["prompt"] = request.prompt_text
        else:
            body["messages"] = [m.to_dict() for m in request.messages]
        body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        if request.seed is not None:
            # Repeated samples of one prompt must differ, and repeat across runs.
            body["seed"] = request.seed + request.sample_index
        if request.stop:
            body["stop"] = list(request.stop)
        if self.extra_body:
            body.update(self.extra_body)
        return orjson.dumps(body)

    async def _post(
        self, client: openai.AsyncOpenAI, body: bytes, path: str | None = None
    ) -> bytes:
        """One HTTP exchange, raw.

        ``client.post`` (the client's documented call for any endpoint) keeps its auth, base URL,
        headers and status errors, but skips the typed-parameter transform, deep copies and
        response model that ``chat.completions.create`` runs on every call: they cost more
        client CPU than the HTTP exchange itself and capped throughput at high concurrency
        (see ``benchmarks/throughput.py``). The body goes out as ready-made JSON bytes.
        """
        import httpx2
        import openai

        try:
            response = await client.post(path or self._path, cast_to=httpx2.Response, content=body)
        except openai.OpenAIError as exc:
            raise self._translate(exc) from exc
        return response.content

    def _to_result(self, request: LLMRequest, content: bytes) -> LLMResult:
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise self._retryable("bad_response", f"response body is not JSON ({exc})") from exc
        try:
            if request.mode == "completion":
                text = answer["choices"][0]["text"] or ""
            else:
                message = answer["choices"][0]["message"]
                text = message.get("content") or ""
        except (TypeError, KeyError, IndexError, AttributeError) as exc:
            expected = "choices[0].text" if request.mode == "completion" else "choices[0].message"
            detail = f"response is not a {request.mode} completion (no {expected}): "
            detail += repr(content[:80])
            raise self._retryable("bad_response", detail) from exc
        usage = answer.get("usage") or {}
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        if not isinstance(prompt, int) or not isinstance(completion, int):
            prompt, completion = count_tokens(request.prompt_text), count_tokens(text)
        model = answer.get("model")
        return LLMResult(
            text=str(text),
            prompt_tokens=prompt,
            completion_tokens=completion,
            model=model if isinstance(model, str) and model else self.model,
        )

    # -- failures ----------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        key = self._endpoint.api_key
        return text.replace(key, "***") if key else text

    def _retryable(
        self, reason: str, detail: str, retry_after: float | None = None
    ) -> RetryableError:
        self._retry_reasons[reason] += 1
        return RetryableError(self._redact(detail[:_MAX_DETAIL]), retry_after=retry_after)

    def _translate(self, exc: openai.OpenAIError) -> Exception:
        """A retryable failure, or a :class:`RunnerError` that retrying cannot fix."""
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return self._retryable("timeout", f"no answer within {self.timeout:g} s (timeout)")
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return self._retryable("connection", f"connection failed: {cause!r}")
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = f"HTTP {status}: {_server_message(exc)}"
            if status == 429:
                retry_after = parse_retry_after(exc.response.headers)
                return self._retryable("rate_limited", detail, retry_after)
            if status >= 500 or status in (408, 409):
                return self._retryable("server_error", detail)
            if status == 401:
                # The server's text may quote part of the key, so it is left out.
                return RunnerError(
                    f"authentication failed at {self.base_url} for model {self.model!r}: "
                    f"{self._endpoint.key_hint}"
                )
            if status == 403:
                hint = "check that the key may use this model"
            elif status == 404:
                hint = "check the model name and that the base URL ends in /v1"
            else:
                hint = "the request itself is wrong; retrying cannot fix it"
            return RunnerError(
                self._redact(f"{self._describe} rejected the request ({detail}): {hint}")
            )
        if isinstance(exc, openai.APIResponseValidationError):
            return self._retryable("bad_response", f"malformed response: {exc}")
        return RunnerError(self._redact(f"{self._describe} failed: {type(exc).__name__}: {exc}"))


def _server_message(exc: openai.APIStatusError) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the client's summary."""
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])[:_MAX_DETAIL]
    return str(exc)[:_MAX_DETAIL]
