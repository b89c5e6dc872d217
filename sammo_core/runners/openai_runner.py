"""An OpenAI-compatible runner: OpenAI, Azure OpenAI, or any server speaking chat completions.

:class:`OpenAIRunner` maps an :class:`~sammo_core.runners.base.LLMRequest` to one chat-completions
call (``POST /chat/completions``) and the answer to an :class:`~sammo_core.runners.base.LLMResult`
with the server's exact token usage. The openai client decides the URL and the authentication
(OpenAI, Azure, ``OPENAI_ORG_ID``, ...) once; each request is then a ready-made JSON body posted by
:class:`~sammo_core.runners.http_transport.HttpTransport` over pooled aiohttp connections, which
costs a fraction of the client CPU that the openai client's own request path does (see
``benchmarks/harness/throughput.py``). Its behaviour under load and failure is explicit:
``timeout`` is a
deadline for each whole exchange (a server that drips its answer a byte at a time is cut off like
one that never answers); a :class:`~sammo_core.runners.retry.RetryPolicy` retries 429s, 5xx,
timeouts, dropped connections and bodies that are not JSON, and :attr:`OpenAIRunner.retry_stats`
counts them by cause; a :class:`~sammo_core.runners.throttle.Limiter` bounds concurrent calls and,
optionally, requests and tokens per minute; the HTTP connection pool is sized to the concurrency;
reply text beyond ``max_reply_bytes`` is cut (``LLMResult.truncated``).

``openai`` and ``aiohttp`` are imported when a runner is built, not when this module is imported.
The API key is never shown: not in ``repr``, not in errors (nor any prefix of it of 8 or more
characters).

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
import http
import ipaddress
import os
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeGuard, TypeVar

import orjson

from sammo_core.errors import ConfigError, RunnerError
from sammo_core.runners.base import (
    DEFAULT_MAX_REPLY_BYTES,
    LLMRequest,
    LLMResult,
    Message,
    Runner,
    best_label,
    label_continuation,
    refuse_soft_prompts,
)
from sammo_core.runners.http_transport import (
    DEFAULT_MAX_BODY_BYTES,
    HttpBodyTooLargeError,
    HttpConnectionError,
    HttpRedirectError,
    HttpStatusError,
    HttpTransport,
)
from sammo_core.runners.openai_scoring import (
    ECHO_LAYOUTS,
    PROBE_PROMPT,
    Echoed,
    EchoLayout,
    chat_label_logprobs,
    check_chat_labels,
    continuation_logprob,
    detect_layout,
    read_chat_listing,
)
from sammo_core.runners.retry import (
    RetryableError,
    RetryCause,
    RetryPolicy,
    RetryRecorder,
    RetryStats,
    parse_retry_after,
    with_retries,
)
from sammo_core.runners.throttle import Limiter, ThrottleStats
from sammo_core.tokens import count_tokens

__all__ = ["DEFAULT_BASE_URL", "OpenAIRunner", "OpenAIRunnerStats", "redact_secret"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers ignore the key, but the client insists on one.
_PLACEHOLDER_KEY = "sk-local-endpoint-needs-no-key"
_MAX_DETAIL = 300
# A quoted fragment of the key this long or longer is redacted too.
_MIN_SECRET_PREFIX = 8
# OpenAI's chat API lists at most 20 alternatives per token.
_MAX_TOP_LOGPROBS = 20
# More tokens than any call can have: a count beyond it is no count (nor is a negative one).
_MAX_PLAUSIBLE_TOKENS = 10**9
_T = TypeVar("_T")


def redact_secret(text: str, secret: str, min_prefix: int = _MIN_SECRET_PREFIX) -> str:
    """``text`` with ``secret``, and every prefix of it of ``min_prefix`` or more characters,
    replaced by ``***``.

    Redact before cutting a message to length: a cut may leave only a prefix of the secret.

    >>> redact_secret("key sk-abcdef123456 and sk-abcdef1 and sk-abc", "sk-abcdef123456")
    'key *** and *** and sk-abc'
    """
    if not secret:
        return text
    if len(secret) < min_prefix:
        return text.replace(secret, "***")
    head, parts, start = secret[:min_prefix], [], 0
    while (found := text.find(head, start)) != -1:
        end = found + min_prefix
        while end < len(text) and end - found < len(secret) and text[end] == secret[end - found]:
            end += 1
        parts += [text[start:found], "***"]
        start = end
    parts.append(text[start:])
    return "".join(parts)


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
    else:
        kind = "openai"
        url = (base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        api_key = api_key or env.get("OPENAI_API_KEY")
        key_hint = "set OPENAI_API_KEY or pass api_key=..."
    parts = urllib.parse.urlsplit(url)
    if parts.username is not None or parts.password is not None:
        # Never echo the URL as given: it holds a password.
        shown = urllib.parse.urlunsplit(
            parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2])
        )
        raise ConfigError(
            f"the endpoint URL {shown} holds a user name and password before its host, which "
            "are neither sent nor shown from a URL: give the URL without them, and the key: "
            f"{key_hint}"
        )
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"the endpoint URL must start with http:// or https://; got {url!r}")
    if kind == "azure" and not api_version:
        raise ConfigError(
            f"the Azure endpoint {url} needs an API version: set OPENAI_API_VERSION or pass "
            "api_version=... (e.g. '2024-10-21')"
        )
    if not api_key:
        if not _is_local(url):
            raise ConfigError(f"no API key for {url}: {key_hint}")
        api_key = _PLACEHOLDER_KEY
    return _Endpoint(kind, url, api_key, api_version, key_hint)


@dataclasses.dataclass(frozen=True, slots=True)
class OpenAIRunnerStats:
    """What an :class:`OpenAIRunner` has done so far.

    ``retry`` holds calls, requests sent, retries by cause and time spent waiting; ``calls``,
    ``attempts``, ``retries`` and ``failed`` read from it.
    """

    succeeded: int
    prompt_tokens: int
    completion_tokens: int
    truncated: int
    retry: RetryStats
    throttle: ThrottleStats

    @property
    def calls(self) -> int:
        return self.retry.calls

    @property
    def attempts(self) -> int:
        return self.retry.attempts

    @property
    def retries(self) -> int:
        return self.retry.retries

    @property
    def failed(self) -> int:
        return self.retry.failed


class OpenAIRunner(Runner):
    """Chat completions from OpenAI, Azure OpenAI or any OpenAI-compatible server.

    Args:
        model: the model (Azure: the deployment) name.
        base_url: the API root, e.g. ``http://127.0.0.1:8000/v1``; default ``OPENAI_BASE_URL``,
            else OpenAI's.
        api_key: default ``OPENAI_API_KEY`` (Azure: ``AZURE_OPENAI_API_KEY``). A loopback
            endpoint needs none; any other endpoint without one is a :class:`ConfigError`.
        timeout: seconds one attempt may take in all: connecting, sending, waiting and reading
            the whole answer (a deadline, not a limit per read); then it is retried.
        retry: when and how long to retry (default ``RetryPolicy()``).
        max_concurrency: the most calls in flight at once (also the connection pool's size).
        requests_per_minute, tokens_per_minute: optional rate limits; a request is charged its
            prompt tokens plus ``max_tokens`` (256 when unset).
        azure_endpoint: use Azure OpenAI at this endpoint (default ``AZURE_OPENAI_ENDPOINT``
            when ``base_url`` is not given).
        api_version: the Azure API version (default ``OPENAI_API_VERSION``).
        extra_body: extra JSON fields sent with every request (server-specific options).
        max_reply_bytes: reply text beyond this many UTF-8 bytes is cut and the result marked
            ``truncated``; ``None`` keeps every byte.
        max_body_bytes: the most bytes of a reply body read, decoded (a gzip body is counted
            inflated); a longer one is not read and fails the call (:class:`RunnerError`);
            ``None``: no cap.
        echo_layout: how the completions server lists echoed prompt log-probabilities, for
            scoring labels: ``"auto"`` (probe it once, with one short request), ``"aligned"``
            (OpenAI, vLLM, llama-cpp-python with a model that adds a BOS token) or
            ``"shifted"`` (llama-cpp-python 0.3.x with a model that adds none); see
            :mod:`~sammo_core.runners.openai_scoring`.
        top_logprobs: how many alternatives per token to ask for when scoring labels (1 to
            20): in chat mode, and on a server with the shifted layout.

    Connections are opened on first use in an event loop and closed by ``async with``,
    :meth:`aclose`, or at the latest when ``asyncio.run()`` finishes; a runner may serve one loop
    after another (``generate_sync`` works repeatedly).

    A request with ``mode="completion"`` (a base model) goes to ``POST /completions`` instead,
    the endpoint vLLM and llama.cpp's server offer for base models: its ``prompt`` is the
    request's ``prompt_text`` as it is, and the answer is read from ``choices[0].text``.

    A request with ``labels`` is answered by scoring them (rank classification; see
    :mod:`~sammo_core.runners.openai_scoring` for how): in completion mode with one request per
    label (the prompt, the label, ``echo`` and ``logprobs``; the first such request of a runner
    with ``echo_layout="auto"`` is preceded by one probe), in chat mode with one request that
    lists the first answer token's ``top_logprobs``. The result's ``label_logprobs`` hold the
    scores, ``text`` the likeliest label, ``calls`` the requests made and the token counts the
    server's usage summed over them (the probe's included); :meth:`planned_calls` lists them
    for budgets. A server that returns no log-probabilities is a :class:`RunnerError` that
    says so.
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
        max_reply_bytes: int | None = DEFAULT_MAX_REPLY_BYTES,
        max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
        echo_layout: EchoLayout = "auto",
        top_logprobs: int = _MAX_TOP_LOGPROBS,
    ) -> None:
        try:  # imported here, not at module level, so that importing sammo_core stays light
            import aiohttp  # noqa: F401
            import openai  # noqa: F401
        except ImportError as exc:
            raise ConfigError(
                f"OpenAIRunner needs the openai and aiohttp packages: pip install {exc.name}"
            ) from exc
        if not model:
            raise ConfigError("model must name a model (Azure: a deployment); got ''")
        if not timeout > 0:
            raise ConfigError(f"timeout must be > 0 seconds; got {timeout}")
        if max_reply_bytes is not None and max_reply_bytes < 1:
            raise ConfigError(f"max_reply_bytes must be >= 1 or None; got {max_reply_bytes}")
        if max_body_bytes is not None and max_body_bytes < 1:
            raise ConfigError(f"max_body_bytes must be >= 1 or None; got {max_body_bytes}")
        if echo_layout not in ECHO_LAYOUTS:
            raise ConfigError(
                f"echo_layout must be one of {', '.join(ECHO_LAYOUTS)}; got {echo_layout!r}"
            )
        if not 1 <= top_logprobs <= _MAX_TOP_LOGPROBS:
            raise ConfigError(
                f"top_logprobs must be within [1, {_MAX_TOP_LOGPROBS}] (OpenAI's limit); "
                f"got {top_logprobs}"
            )
        self.echo_layout: EchoLayout = echo_layout
        self.top_logprobs = top_logprobs
        self._probe_lock: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None
        self.max_reply_bytes = max_reply_bytes
        self.max_body_bytes = max_body_bytes
        self.model = model
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self.extra_body = dict(extra_body) if extra_body else None
        self._endpoint = _resolve_endpoint(base_url, api_key, azure_endpoint, api_version)
        self.endpoint = self._endpoint.url  # part of cache keys (Runner.endpoint)
        self.limiter = Limiter(max_concurrency, requests_per_minute, tokens_per_minute)
        self._rng = self.retry.make_rng(model)
        self._path = self._api_path("chat/completions")
        # Completion-mode requests (base models) go to the legacy completions endpoint, which
        # vLLM and llama.cpp's server serve: the prompt is sent as is, with no chat template.
        self._completions_path = self._api_path("completions")
        self._transport = self._make_transport()
        self._recorder = RetryRecorder()
        self._succeeded = self._truncated = 0
        self._prompt_tokens = self._completion_tokens = 0

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
            succeeded=self._succeeded,
            prompt_tokens=self._prompt_tokens,
            completion_tokens=self._completion_tokens,
            truncated=self._truncated,
            retry=self._recorder.snapshot(),
            throttle=self.limiter.stats,
        )

    @property
    def retry_stats(self) -> RetryStats:
        """Calls, requests sent, retries by cause and time spent waiting, so far."""
        return self._recorder.snapshot()

    # -- the connection ---------------------------------------------------------------------

    def _make_transport(self) -> HttpTransport:
        """The pooled HTTP client, configured by the openai client.

        The openai client decides the URL, the authentication headers (Azure's ``api-key``,
        OpenAI's bearer token, ``OPENAI_ORG_ID`` and ``OPENAI_PROJECT_ID``) and the query
        (Azure's ``api-version``), once; requests then go through :class:`HttpTransport`.
        """
        import httpx2
        import openai

        endpoint = self._endpoint
        # This client never sends: a transport that cannot send spares it the TLS setup (50 ms
        # of CPU for each runner built) and fails loudly should anything try.
        never_sends = httpx2.AsyncClient(transport=httpx2.AsyncBaseTransport())
        client: openai.AsyncOpenAI
        if endpoint.kind == "azure":
            client = openai.AsyncAzureOpenAI(
                azure_endpoint=endpoint.url,
                api_version=endpoint.api_version,
                api_key=endpoint.api_key,
                http_client=never_sends,
            )
        else:
            client = openai.AsyncOpenAI(
                base_url=endpoint.url, api_key=endpoint.api_key, http_client=never_sends
            )
        headers = {**client.default_headers, **client.auth_headers}
        return HttpTransport(
            str(client.base_url),
            {name: value for name, value in headers.items() if isinstance(value, str)},
            {name: str(value) for name, value in client.default_query.items()},
            max_connections=self.max_concurrency,
            max_body_bytes=self.max_body_bytes,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections; a later call opens new ones."""
        await self._transport.aclose()

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

    def _api_path(self, operation: str) -> str:
        """The path of an API ``operation`` (e.g. ``chat/completions``) under the base URL.

        Azure names the deployment in the path (its base URL ends in ``/openai``).
        """
        if self._endpoint.kind == "azure":
            return f"/deployments/{urllib.parse.quote(self.model, safe='')}/{operation}"
        return f"/{operation}"

    async def generate(self, request: LLMRequest) -> LLMResult:
        refuse_soft_prompts(request, self.model)
        if request.labels:
            if request.mode == "completion":
                return await self._score_echoed(request)
            return await self._score_chat(request)
        return await self._call(
            self._path_for(request), self._body(request), request, self._to_result
        )

    def planned_calls(self, request: LLMRequest) -> tuple[LLMRequest, ...]:
        """``request``; for one with labels, the scoring requests (see the class docstring).

        >>> runner = OpenAIRunner("m", base_url="http://127.0.0.1:9/v1")
        >>> request = LLMRequest.from_prompt("Sky blue?", mode="completion", labels=("y", "n"))
        >>> [c.prompt_text for c in runner.planned_calls(request)]
        ['1, 2, 3, 4, 5, 6,', 'Sky blue? y', 'Sky blue? n']
        """
        if not request.labels:
            return (request,)
        if request.mode == "chat":
            return (dataclasses.replace(request, max_tokens=1),)
        text = request.prompt_text
        calls = [
            self._echo_request(text + label_continuation(text, label)) for label in request.labels
        ]
        if self.echo_layout == "auto":
            calls.insert(0, self._echo_request(PROBE_PROMPT))
        return tuple(calls)

    # -- scored answers ----------------------------------------------------------------------

    @staticmethod
    def _echo_request(text: str) -> LLMRequest:
        """A completions request that scores ``text`` (echoed, one token generated)."""
        return LLMRequest((Message("user", text),), max_tokens=1, mode="completion")

    def _echo_body(self, text: str, top: int) -> bytes:
        # max_tokens=1, not 0: llama-cpp-python reads max_tokens <= 0 as "fill the context".
        body: dict[str, Any] = {"model": self.model, "prompt": text, "temperature": 0.0}
        body.update(max_tokens=1, echo=True, logprobs=top)
        if self.extra_body:
            body.update(self.extra_body)
        return orjson.dumps(body)

    def _no_logprobs(self, what: str, fix: str) -> RunnerError:
        return RunnerError(
            f"the server at {self.base_url} returned no {what} for model {self.model!r}; "
            f"labels cannot be scored there: {fix}, or drop the labels (--labels, "
            "GenerateText(labels=...))"
        )

    def _echoed(self, content: bytes, sent: str) -> tuple[Echoed, dict[str, Any]]:
        """The echo listing of a completions answer to ``sent``, and the answer."""
        answer = self._json(content)
        try:
            choice = answer["choices"][0]
        except (TypeError, KeyError, IndexError):
            start = self._redact(content[:4096].decode("utf-8", errors="replace"), 80)
            raise self._retryable("malformed", f"no choices[0] in {start!r}") from None
        echo = Echoed.read(choice) if isinstance(choice, Mapping) else None
        if echo is None or not echo.text.startswith(sent) or echo.offsets[0] != 0:
            raise self._no_logprobs(
                "echoed prompt log-probabilities",
                "use a server that returns them for echo=true with logprobs (llama-cpp-python's "
                "server, vLLM), or score in chat mode",
            )
        return echo, answer

    async def _layout(self) -> tuple[Literal["aligned", "shifted"], LLMResult | None]:
        """The server's echo layout, probed once (then the probe's result, for accounting)."""
        if self.echo_layout != "auto":
            return self.echo_layout, None
        loop = asyncio.get_running_loop()
        if self._probe_lock is None or self._probe_lock[0] is not loop:
            self._probe_lock = (loop, asyncio.Lock())
        async with self._probe_lock[1]:
            if self.echo_layout != "auto":  # another request probed meanwhile
                return self.echo_layout, None
            found: list[Literal["aligned", "shifted"]] = []

            def parse(request: LLMRequest, content: bytes) -> LLMResult:
                echo, answer = self._echoed(content, PROBE_PROMPT)
                layout = detect_layout(echo, PROBE_PROMPT)
                if layout is None:
                    raise RunnerError(
                        f"{self._describe} generated nothing after the probe {PROBE_PROMPT!r}, "
                        "so its layout of echoed log-probabilities is unknown; pass "
                        "echo_layout='aligned' (OpenAI, vLLM, llama-cpp-python with a model "
                        "that adds a BOS token) or echo_layout='shifted' (llama-cpp-python with "
                        "one that adds none)"
                    )
                found.append(layout)
                return self._usage_result(request, answer, "")

            probe = self._echo_request(PROBE_PROMPT)
            result = await self._call(
                self._completions_path, self._echo_body(PROBE_PROMPT, 1), probe, parse
            )
            self.echo_layout = found[0]
            return found[0], result

    async def _score_echoed(self, request: LLMRequest) -> LLMResult:
        """Completion mode: one echo request per label; each label scores its tokens' sum."""
        layout, probe = await self._layout()
        top = 1 if layout == "aligned" else self.top_logprobs
        text = request.prompt_text

        def parse_for(end: int) -> Callable[[LLMRequest, bytes], LLMResult]:
            def parse(sent: LLMRequest, content: bytes) -> LLMResult:
                echo, answer = self._echoed(content, sent.prompt_text)
                try:
                    score = continuation_logprob(echo, len(text), end, layout)
                except ValueError as exc:
                    raise RunnerError(
                        f"{self._describe} echoed {sent.prompt_text[-80:]!r} with log-"
                        f"probabilities that cannot score the label ({exc}) in the "
                        f"{layout!r} layout; if the server lists them otherwise, pass "
                        "echo_layout='aligned' or 'shifted' to OpenAIRunner"
                    ) from None
                return self._usage_result(sent, answer, "", (score,))

            return parse

        calls = []
        for label in request.labels:
            sent = text + label_continuation(text, label)
            calls.append(
                self._call(
                    self._completions_path,
                    self._echo_body(sent, top),
                    self._echo_request(sent),
                    parse_for(len(sent)),
                )
            )
        parts = await _all_or_none(calls)
        result = self._combine(request, parts, [p.label_logprobs[0] for p in parts])
        if probe is None:
            return result
        # The probe serves the runner, not this request: spent, but not the program's cost.
        overhead = (probe.calls, probe.prompt_tokens, probe.completion_tokens)
        return dataclasses.replace(result, overhead=overhead)

    async def _score_chat(self, request: LLMRequest) -> LLMResult:
        """Chat mode: one request; each label scores the first answer token that begins it."""
        check_chat_labels(request.labels)
        body: dict[str, Any] = {"model": self.model}
        body["messages"] = [m.to_dict() for m in request.messages]
        body.update(temperature=request.temperature, max_tokens=1)
        body.update(logprobs=True, top_logprobs=self.top_logprobs)
        if request.seed is not None:
            body["seed"] = request.seed + request.sample_index
        if self.extra_body:
            body.update(self.extra_body)

        def parse(sent: LLMRequest, content: bytes) -> LLMResult:
            answer = self._json(content)
            try:
                choice = answer["choices"][0]
            except (TypeError, KeyError, IndexError):
                raise self._retryable("malformed", "no choices[0] in the answer") from None
            listed = read_chat_listing(choice) if isinstance(choice, Mapping) else None
            if listed is None:
                raise self._no_logprobs(
                    "log-probabilities for a chat completion (logprobs=true, top_logprobs)",
                    "use a server that returns them (OpenAI, vLLM), score in completion mode "
                    "on a completions server (GenerateText(mode='completion'))",
                )
            return self._usage_result(sent, answer, "", chat_label_logprobs(sent.labels, listed))

        scored = dataclasses.replace(request, max_tokens=1)
        part = await self._call(self._path, orjson.dumps(body), scored, parse)
        return self._combine(request, [part], part.label_logprobs)

    def _usage_result(
        self,
        sent: LLMRequest,
        answer: Mapping[str, Any],
        text: str,
        label_logprobs: Sequence[float] = (),
    ) -> LLMResult:
        """One call's result: the server's usage (else estimates) and the scores read."""
        counted = _reported_usage(answer)
        prompt, completion = counted or (count_tokens(sent.prompt_text), 1)
        model = answer.get("model")
        return LLMResult(
            text,
            prompt,
            completion,
            model=model if isinstance(model, str) and model else self.model,
            label_logprobs=tuple(label_logprobs),
            usage_estimated=counted is None,
        )

    def _combine(
        self, request: LLMRequest, parts: Sequence[LLMResult], logprobs: Sequence[float]
    ) -> LLMResult:
        """The scored answer to ``request`` from its calls' results."""
        return LLMResult(
            best_label(request.labels, logprobs),
            sum(p.prompt_tokens for p in parts),
            sum(p.completion_tokens for p in parts),
            model=parts[-1].model,
            label_logprobs=tuple(logprobs),
            calls=len(parts),
        )

    def _json(self, content: bytes) -> Any:
        try:
            return orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise self._retryable("malformed", f"response body is not JSON ({exc})") from None

    async def _call(
        self,
        path: str,
        body: bytes,
        request: LLMRequest,
        parse: Callable[[LLMRequest, bytes], LLMResult],
    ) -> LLMResult:
        """POST ``body`` to ``path`` with retries, throttling and a deadline per attempt, and
        ``parse`` the reply's bytes into a result (parsing may ask for a retry, too)."""
        tokens = self.limiter.charge_for(request)

        async def attempt() -> LLMResult:
            async with self.limiter.slot(tokens):
                try:
                    async with asyncio.timeout(self.timeout):
                        content = await self._post(path, body)
                except TimeoutError:
                    raise self._timed_out() from None
            return parse(request, content)

        result = await with_retries(
            attempt, self.retry, self._describe, rng=self._rng, recorder=self._recorder
        )
        self._succeeded += 1
        self._truncated += result.truncated
        self._prompt_tokens += result.prompt_tokens
        self._completion_tokens += result.completion_tokens
        return result

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

    async def _post(self, path: str, body: bytes) -> bytes:
        """One HTTP exchange, raw: the reply's body, or a retryable or final error."""
        try:
            return await self._transport.post(path, body)
        except HttpStatusError as exc:
            # The server's words may quote the key: the translation carries them redacted, and
            # the original stays out of tracebacks.
            raise self._status_error(exc.status, exc.headers, exc.content) from None
        except HttpConnectionError as exc:
            raise self._retryable("dropped", f"connection failed: {exc}") from None
        except HttpRedirectError as exc:
            # Not followed, and not retried: the answer would be the same.
            fix = (
                "it is not followed, so the key is not sent to another host: if that server "
                "is the one to use, make it the base URL"
                if exc.target is not None
                else "check the base URL"
            )
            raise RunnerError(
                self._redact(f"{self._describe} redirected the request ({exc}); {fix}")
            ) from None
        except HttpBodyTooLargeError as exc:
            raise RunnerError(
                f"{self._describe} answered with a body of more than {exc.limit:,} bytes "
                f"(decoded; HTTP {exc.status}), which was not read: if such answers are "
                "expected, raise the cap (--max-body-bytes; in Python max_body_bytes=...)"
            ) from None

    def _to_result(self, request: LLMRequest, content: bytes) -> LLMResult:
        try:
            answer = orjson.loads(content)
        except orjson.JSONDecodeError as exc:
            raise self._retryable("malformed", f"response body is not JSON ({exc})") from None
        try:
            choice = answer["choices"][0]
            if request.mode == "completion":
                text = _text_of(choice["text"])
            else:
                text = _text_of(choice["message"].get("content"))
        except (TypeError, KeyError, IndexError, AttributeError):
            expected = "choices[0].text" if request.mode == "completion" else "choices[0].message"
            start = self._redact(content[:4096].decode("utf-8", errors="replace"), 80)
            detail = f"response is not a {request.mode} completion (no {expected}): {start!r}"
            raise self._retryable("malformed", detail) from None
        counted = _reported_usage(answer)
        prompt, completion = counted or (count_tokens(request.prompt_text), count_tokens(text))
        model = answer.get("model")
        return LLMResult(
            text=text,
            prompt_tokens=prompt,
            completion_tokens=completion,
            model=model if isinstance(model, str) and model else self.model,
            cut_off=choice.get("finish_reason") == "length",
            usage_estimated=counted is None,
        ).capped(self.max_reply_bytes)

    # -- failures ----------------------------------------------------------------------------

    def _redact(self, text: str, limit: int | None = None) -> str:
        """``text`` without the key or a prefix of it, then cut to ``limit`` characters."""
        return redact_secret(text, self._endpoint.api_key)[:limit]

    def _retryable(
        self, cause: RetryCause, detail: str, retry_after: float | None = None
    ) -> RetryableError:
        return RetryableError(self._redact(detail, _MAX_DETAIL), retry_after, cause)

    def _timed_out(self) -> RetryableError:
        return self._retryable("timeout", f"no whole answer within {self.timeout:g} s (timeout)")

    def _status_error(self, status: int, headers: Mapping[str, str], content: bytes) -> Exception:
        """A retryable failure, or a :class:`RunnerError` that retrying cannot fix."""
        detail = self._redact(f"HTTP {status}: {_server_message(status, content)}", _MAX_DETAIL)
        if status == 429:
            return self._retryable("429", detail, parse_retry_after(headers))
        if status >= 500 or status in (408, 409):
            return self._retryable("5xx", detail)
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


async def _all_or_none(calls: Sequence[Awaitable[_T]]) -> list[_T]:
    """Run ``calls`` concurrently; when one fails, cancel the others and raise its error."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _text_of(content: Any) -> str:
    """A reply's text: a string as it is, ``null`` as empty, a list of parts as its text parts
    joined (parts of other kinds, such as images, are left out); else a :class:`TypeError`.

    >>> _text_of([{"type": "text", "text": "Ye"}, {"type": "image_url"}, {"text": "s"}])
    'Yes'
    >>> _text_of(None), _text_of("No")
    ('', 'No')
    """
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        return "".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping)
            and part.get("type", "text") == "text"
            and isinstance(part.get("text"), str)
        )
    raise TypeError(f"content is {type(content).__name__}, not text")


def _reported_usage(answer: Any) -> tuple[int, int] | None:
    """The answer's ``(prompt_tokens, completion_tokens)``, or ``None`` when it reports none or
    counts no call can have: not whole numbers, negative, or beyond any context window.

    Such a count is never believed: a negative one would let a budget admit calls it cannot pay
    for. The caller estimates instead, and flags the estimate.

    >>> _reported_usage({"usage": {"prompt_tokens": 12, "completion_tokens": 3}})
    (12, 3)
    >>> [_reported_usage({"usage": {"prompt_tokens": p, "completion_tokens": 3}})
    ...  for p in (-500, 2.5, True, "12", 10**12)]
    [None, None, None, None, None]
    """
    usage = answer.get("usage") if isinstance(answer, Mapping) else None
    if not isinstance(usage, Mapping):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if _plausible(prompt) and _plausible(completion):
        return prompt, completion
    return None


def _plausible(count: Any) -> TypeGuard[int]:
    return (
        isinstance(count, int)
        and not isinstance(count, bool)
        and 0 <= count <= _MAX_PLAUSIBLE_TOKENS
    )


def _server_message(status: int, content: bytes) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body as text.

    Whole: the caller redacts the key, then cuts (a cut first could leave a prefix of the key).

    >>> _server_message(400, b'{"error": {"message": "bad temperature", "type": "x"}}')
    'bad temperature'
    >>> _server_message(502, b"<html>Bad Gateway</html>")
    '<html>Bad Gateway</html>'
    >>> _server_message(503, b"")
    'Service Unavailable (no body)'
    """
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError:
        body = None
    if isinstance(body, Mapping):
        error = body.get("error", body)
        if isinstance(error, Mapping) and isinstance(error.get("message"), str):
            return str(error["message"])
    text = content.decode("utf-8", errors="replace").strip()
    if text:
        return text
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "error"
    return f"{phrase} (no body)"
