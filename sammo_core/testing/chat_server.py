"""A loopback OpenAI-compatible chat-completions server for tests, demos and benchmarks.

:class:`ChatServer` is a real HTTP/1.1 server (keep-alive, hundreds of concurrent connections)
running an asyncio loop on its own thread. It answers ``POST /v1/chat/completions`` with a proper
``chat.completion`` object (usage counted with :func:`sammo_core.tokens.count_tokens`),
``POST /v1/completions`` (a raw ``prompt``, for base models) with a ``text_completion``, and
``GET /v1/models``, after a configurable latency, and misbehaves on purpose when asked to: 429
with ``Retry-After``, 500, 503, a dropped connection, a body that is not JSON, an answer slower
than the client's timeout, or an answer whose body drips in one byte at a time (``"drip"``: each
read is quick, the whole answer takes minutes). A reply function picks its own misbehaviour per
request by raising :class:`ReplyFault`: any fault kind, or an HTTP error with a given message.
A reply function may also return an :class:`Answer` (the reply's text with a ``finish_reason``,
a ``usage`` or a message ``content`` of its choosing: the shapes real servers send) or a
:class:`RawAnswer` (any status, headers and body bytes as they are: a redirect, a gzip body, a
``Retry-After`` header a client must survive).

Faults are reproducible. With ``fault_rate=p`` each distinct request body is faulted with
probability ``p`` (decided by a hash of the seed and the body), on its first ``fault_attempts``
arrivals only, so a client that retries always gets through and gets the same answer as without
faults. :meth:`FaultPlan.scripted` instead fixes the fault of each request in arrival order, and
:meth:`FaultPlan.always` fails every request.

>>> import json, urllib.request
>>> with ChatServer() as server:
...     body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "Hi there"}]})
...     request = urllib.request.Request(
...         server.base_url + "/chat/completions",
...         data=body.encode(),
...         headers={"Content-Type": "application/json"},
...     )
...     with urllib.request.urlopen(request) as response:
...         reply = json.load(response)
>>> reply["choices"][0]["message"]["content"]
'echo: Hi there'
>>> reply["usage"]
{'prompt_tokens': 2, 'completion_tokens': 4, 'total_tokens': 6}

From a shell: ``python -m sammo_core.testing.chat_server --port 8000 --latency 0.05``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from types import TracebackType
from typing import Any, Literal, get_args

import orjson

from sammo_core.errors import ConfigError
from sammo_core.testing.logprobs import (
    DEFAULT_VOCABULARY,
    LOGPROB_LAYOUTS,
    LogprobLayout,
    Scorer,
    chat_logprobs,
    completion_logprobs,
    default_logprob,
)
from sammo_core.tokens import count_tokens

__all__ = [
    "FAULT_KINDS",
    "Answer",
    "ChatServer",
    "FaultKind",
    "FaultPlan",
    "RawAnswer",
    "ReplyFault",
    "RequestRecord",
    "ServerStats",
]

FaultKind = Literal["429", "500", "503", "drop", "garbage", "slow", "drip"]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

_Response = tuple[int, bytes, Sequence[tuple[str, str]]]

# The same token pattern as sammo_core.tokens, used to cut a reply at ``max_tokens``.
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
# OpenAI's path, and Azure's (the deployment is named in the path).
_CHAT_PATH = re.compile(r"/v1/chat/completions|/openai/deployments/[^/]+/chat/completions")
# The completions endpoint for base models (a raw ``prompt``, answers in ``choices[0].text``).
_COMPLETIONS_PATH = re.compile(r"/v1/completions|/openai/deployments/[^/]+/completions")
_GARBAGE = b'{"id": "chatcmpl-truncated", "object": "chat.comp'


@dataclasses.dataclass(frozen=True)
class Answer:
    """A reply function's answer with more than text: the shapes real servers send.

    Args:
        text: the reply text (cut at ``max_tokens`` and at stop sequences, as a plain reply).
        content: what the answer's ``message.content`` holds instead of ``text`` (e.g. a list
            of parts, ``[{"type": "text", "text": "Yes"}]``); ``None`` keeps ``text``.
        finish_reason: the answer's ``finish_reason`` (``"length"``: cut at ``max_tokens``);
            ``None`` for what the server decides (``"stop"``, or ``"length"`` when it cut).
        usage: the answer's ``usage`` as it is (negative numbers, strings, not even an
            object, ...); ``None`` for the counted one.

    >>> Answer("Yes", finish_reason="length").finish_reason
    'length'
    """

    text: str = ""
    content: Any = None
    finish_reason: str | None = None
    usage: Any = None


@dataclasses.dataclass(frozen=True)
class RawAnswer:
    """A reply function's answer sent exactly as given: status, extra headers, body bytes.

    ``Content-Type: application/json``, ``Content-Length`` and ``Connection`` are sent as
    always; ``headers`` come after them (a ``Location`` for a redirect, ``Content-Encoding:
    gzip`` for a compressed body, a ``Retry-After``).

    >>> RawAnswer(307, headers=(("Location", "http://127.0.0.1:9/v1/chat/completions"),)).status
    307
    """

    status: int = 200
    body: bytes = b""
    headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        try:
            HTTPStatus(self.status)
        except ValueError:
            raise ConfigError(
                f"RawAnswer status {self.status} is not an HTTP status; use one such as 200"
            ) from None


Reply = Callable[[Mapping[str, Any]], "str | Answer | RawAnswer"]


def echo_reply(request: Mapping[str, Any]) -> str:
    """The default reply: ``"echo: "`` followed by the last message's text (for the
    completions endpoint: the prompt's).

    >>> echo_reply({"messages": [{"role": "user", "content": "2 + 2?"}]})
    'echo: 2 + 2?'
    >>> echo_reply({"prompt": "Q: 2 + 2?\\nA:"})
    'echo: Q: 2 + 2?\\nA:'
    """
    if "messages" not in request:
        return "echo: " + _prompt_text(request.get("prompt"))
    return "echo: " + _content_text(request["messages"][-1].get("content"))


def _prompt_text(prompt: Any) -> str:
    """A completions ``prompt`` as text (a one-item list counts as its item)."""
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    return prompt if isinstance(prompt, str) else ""


def _content_text(content: Any) -> str:
    """Message content as text; the list-of-parts form keeps only its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


class ReplyFault(Exception):
    """Raised by a reply function to answer this one request with a fault instead of a reply.

    ``ReplyFault("slow")`` (any :data:`FaultKind`) misbehaves as a planned fault would (a
    ``"slow"`` or ``"drip"`` one answers with ``message`` as the reply text, late);
    ``ReplyFault(400, "message")`` answers with that HTTP status and an OpenAI-style error body
    whose ``error.message`` is ``message``.

    >>> ReplyFault(500, "boom").status, ReplyFault("drip").kind
    (500, 'drip')
    >>> ReplyFault("late")
    Traceback (most recent call last):
    ...
    sammo_core.errors.ConfigError: unknown fault kind 'late'; use one of 429, 500, 503, drop, \
garbage, slow, drip, or an HTTP status such as 400
    """

    def __init__(self, fault: FaultKind | int, message: str = "Simulated failure.") -> None:
        super().__init__(fault, message)
        self.kind: FaultKind | None = None
        self.status: int | None = None
        if isinstance(fault, int) and 400 <= fault <= 599:
            self.status = fault
        elif fault in FAULT_KINDS:
            self.kind = fault
        else:
            raise ConfigError(
                f"unknown fault kind {fault!r}; use one of {', '.join(FAULT_KINDS)}, "
                "or an HTTP status such as 400"
            )
        self.message = message


def _truncate(text: str, max_tokens: int) -> tuple[str, bool]:
    """Cut ``text`` after ``max_tokens`` tokens; say whether anything was cut."""
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count == max_tokens:
            rest = text[match.end() :]
            return text[: match.end()], bool(_TOKEN.search(rest))
    return text, False


@dataclasses.dataclass(frozen=True)
class FaultPlan:
    """Decides, per chat request, whether and how the server misbehaves.

    Args:
        rate: probability that a distinct request body is faulted at all.
        kinds: the faults to draw from (each faulty attempt draws one).
        attempts: how many arrivals of a faulted body fail before it succeeds; ``None`` for ever.
        seed: mixes into the hash, so different seeds fault different requests.
        script: if given, the fault of each chat request in arrival order (``None`` for none);
            requests beyond its end succeed. ``rate``, ``kinds`` and ``attempts`` are then unused.

    >>> plan = FaultPlan(rate=1.0, kinds=("500",), attempts=2)
    >>> [plan.decide("body-hash", attempt, index=0) for attempt in (1, 2, 3)]
    ['500', '500', None]
    >>> FaultPlan.scripted(["429", None]).decide("any", attempt=1, index=0)
    '429'
    """

    rate: float = 0.0
    kinds: tuple[FaultKind, ...] = FAULT_KINDS
    attempts: int | None = 1
    seed: int = 0
    script: tuple[FaultKind | None, ...] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ConfigError(f"fault rate must be within [0, 1]; got {self.rate}")
        if not self.kinds:
            raise ConfigError(f"fault kinds must name at least one of {', '.join(FAULT_KINDS)}")
        for kind in (*self.kinds, *(k for k in self.script or () if k is not None)):
            if kind not in FAULT_KINDS:
                raise ConfigError(
                    f"unknown fault kind {kind!r}; use one of {', '.join(FAULT_KINDS)}"
                )
        if self.attempts is not None and self.attempts < 1:
            raise ConfigError(f"fault attempts must be >= 1 or None; got {self.attempts}")

    @classmethod
    def always(cls, kind: FaultKind) -> FaultPlan:
        """Fail every chat request, on every attempt, with ``kind``."""
        return cls(rate=1.0, kinds=(kind,), attempts=None)

    @classmethod
    def scripted(cls, faults: Iterable[FaultKind | None]) -> FaultPlan:
        """Fault the n-th chat request (in arrival order) with ``faults[n]``."""
        return cls(script=tuple(faults))

    def decide(self, key: str, attempt: int, index: int) -> FaultKind | None:
        """The fault for a request, or ``None`` to answer it normally.

        Args:
            key: a digest of the request body.
            attempt: how many times this body has arrived, counting this one (from 1).
            index: the arrival order of this request among all chat requests (from 0).
        """
        if self.script is not None:
            return self.script[index] if index < len(self.script) else None
        if self.rate <= 0.0 or (self.attempts is not None and attempt > self.attempts):
            return None
        if random.Random(f"{self.seed}:{key}").random() >= self.rate:
            return None
        return random.Random(f"{self.seed}:{key}:{attempt}").choice(self.kinds)


@dataclasses.dataclass(frozen=True, slots=True)
class RequestRecord:
    """One HTTP request the server handled; times are ``time.monotonic()`` seconds.

    ``status`` is 0 for a dropped connection (no response at all). ``headers`` are the
    request's headers, names in lower case (what a client sent: its credentials too).
    """

    index: int
    method: str
    path: str
    key: str
    attempt: int
    fault: FaultKind | None
    status: int
    started: float
    finished: float
    headers: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class ServerStats:
    """A snapshot of the server's counters.

    ``requests`` counts answered HTTP requests (a dropped one too, with status 0),
    ``completions`` the completions (chat or text) answered with 200, ``connections`` the TCP
    connections accepted, ``by_fault`` the faults decided (a ``"slow"`` one before it finishes), and
    ``max_in_flight`` the most chat requests in progress at once.
    """

    requests: int
    completions: int
    connections: int
    by_status: dict[int, int]
    by_fault: dict[str, int]
    in_flight: int
    max_in_flight: int
    records: tuple[RequestRecord, ...]


class ChatServer:
    """An OpenAI-compatible chat-completions server on 127.0.0.1, on its own thread.

    Args:
        latency: seconds each chat request waits before its answer (without blocking others).
        reply: a function from the request JSON to the reply text (default :func:`echo_reply`),
            or to an :class:`Answer` or a :class:`RawAnswer`.
        model: the model listed by ``GET /v1/models``; completions echo the requested model.
        faults: an explicit :class:`FaultPlan`; or build one from the next four arguments.
        fault_rate, fault_kinds, fault_attempts, seed: see :class:`FaultPlan`.
        retry_after: seconds announced by 429 answers (``Retry-After`` and ``retry-after-ms``).
        slow_delay: extra seconds a ``"slow"`` fault waits (set it above the client timeout).
        drip_interval: seconds between the bytes of a ``"drip"`` fault's body (sent after the
            headers, one byte at a time).
        api_key: if given, requests must carry it (``Authorization: Bearer`` or ``api-key``),
            else they get 401.
        usage: whether answers carry a ``usage`` object.
        logprob: the scorer of the log-probabilities the server returns when asked (default
            :func:`~sammo_core.testing.logprobs.default_logprob`): ``logprob(context, token)``.
            ``/v1/completions`` lists them with ``logprobs=N`` (and the prompt's too with
            ``echo=true``), chat completions with ``logprobs=true`` and ``top_logprobs=N``; see
            :mod:`sammo_core.testing.logprobs` for the tokenizer and the shapes.
        vocabulary: tokens that top-N lists rank besides those of the text itself.
        logprobs_layout: ``"aligned"`` (OpenAI's and vLLM's layout of echoed prompt
            log-probabilities), ``"shifted"`` (llama-cpp-python's with a model without a BOS
            token: each entry holds the next token's distribution), or ``"none"`` (a server
            that lacks log-probabilities: every answer has ``logprobs: null``).
        host, port: where to listen; port 0 picks a free one.
        max_records: how many :class:`RequestRecord` entries to keep (the newest).

    Use it as a context manager; ``base_url`` is what an OpenAI client wants::

        with ChatServer(latency=0.05, fault_rate=0.2, seed=0) as server:
            runner = OpenAIRunner("test-model", base_url=server.base_url)
    """

    def __init__(
        self,
        *,
        latency: float = 0.0,
        reply: Reply | None = None,
        model: str = "sammo-test",
        faults: FaultPlan | None = None,
        fault_rate: float = 0.0,
        fault_kinds: Iterable[FaultKind] = FAULT_KINDS,
        fault_attempts: int | None = 1,
        seed: int = 0,
        retry_after: float = 0.05,
        slow_delay: float = 5.0,
        drip_interval: float = 1.0,
        api_key: str | None = None,
        usage: bool = True,
        logprob: Scorer | None = None,
        vocabulary: Iterable[str] = DEFAULT_VOCABULARY,
        logprobs_layout: LogprobLayout = "aligned",
        host: str = "127.0.0.1",
        port: int = 0,
        max_records: int = 100_000,
    ) -> None:
        for name, value in (
            ("latency", latency),
            ("retry_after", retry_after),
            ("slow_delay", slow_delay),
            ("drip_interval", drip_interval),
        ):
            if value < 0:
                raise ConfigError(f"{name} must be >= 0 seconds; got {value}")
        if max_records < 0:
            raise ConfigError(f"max_records must be >= 0; got {max_records}")
        if logprobs_layout not in LOGPROB_LAYOUTS:
            raise ConfigError(
                f"logprobs_layout {logprobs_layout!r} is not one of {', '.join(LOGPROB_LAYOUTS)}"
            )
        if faults is not None and fault_rate:
            raise ConfigError("pass either faults=FaultPlan(...) or fault_rate=..., not both")
        self.latency = latency
        self.model = model
        self.retry_after = retry_after
        self.slow_delay = slow_delay
        self.drip_interval = drip_interval
        self.usage = usage
        self.logprob = logprob or default_logprob
        self.vocabulary = tuple(vocabulary)
        self.logprobs_layout = logprobs_layout
        self.host = host
        self.faults = faults or FaultPlan(
            rate=fault_rate, kinds=tuple(fault_kinds), attempts=fault_attempts, seed=seed
        )
        self._reply = reply or echo_reply
        self._api_key = api_key
        self._requested_port = port
        self._port: int | None = None
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=max_records)
        self._reset_counters()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._connections: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"ChatServer({where}, latency={self.latency}, faults={self.faults!r})"

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ChatServer:
        """Start listening; returns once the port is bound."""
        if self._thread is not None:
            raise ConfigError("this ChatServer is already started; use a new one")
        self._thread = threading.Thread(target=self._serve, name="sammo-chat-server", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            self._thread.join()
            raise self._startup_error
        return self

    def stop(self) -> None:
        """Close every connection and the listening socket, and join the thread (idempotent)."""
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None or not thread.is_alive():
            return
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already finished
                loop.call_soon_threadsafe(stop.set)
        thread.join()

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._port is None:
            raise ConfigError("the ChatServer is not started; use `with ChatServer() as server:`")
        return self._port

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, e.g. ``http://127.0.0.1:54321/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"http://{host}:{self.port}/v1"

    # -- counters ----------------------------------------------------------------------------

    def _reset_counters(self) -> None:
        self._requests = 0
        self._completions = 0
        self._connections_opened = 0
        self._chat_index = 0
        self._by_status: Counter[int] = Counter()
        self._by_fault: Counter[str] = Counter()
        self._in_flight = 0
        self._max_in_flight = 0
        self._attempts: dict[str, int] = {}
        self._records.clear()

    def reset(self) -> None:
        """Forget counters, records and attempt counts (e.g. between benchmark runs)."""
        with self._lock:
            self._reset_counters()

    def stats(self) -> ServerStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return ServerStats(
                requests=self._requests,
                completions=self._completions,
                connections=self._connections_opened,
                by_status=dict(self._by_status),
                by_fault=dict(self._by_fault),
                in_flight=self._in_flight,
                max_in_flight=self._max_in_flight,
                records=tuple(self._records),
            )

    @property
    def records(self) -> tuple[RequestRecord, ...]:
        with self._lock:
            return tuple(self._records)

    # -- the server thread -------------------------------------------------------------------

    def _serve(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # reported to start(); the thread itself must not die loud
            self._startup_error = exc
        finally:
            self._ready.set()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(
            self._handle, self.host, self._requested_port, backlog=1024
        )
        try:
            self._port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._stop.wait()
        finally:
            server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        with self._lock:
            self._connections_opened += 1
        try:
            while await self._handle_one(reader, writer):
                pass
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            # Cancelled only by _main at shutdown; this is the connection's top-level task.
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    async def _handle_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; return whether to keep the connection open."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        except asyncio.LimitOverrunError:
            await self._write(writer, 431, b"", (), keep_alive=False)
            return False
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            await self._write(writer, 400, b"", (), keep_alive=False)
            return False
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            await self._write(writer, 411, b"", (), keep_alive=False)
            return False
        try:
            length = int(headers.get("content-length", "0") or 0)
        except ValueError:
            await self._write(writer, 400, b"", (), keep_alive=False)
            return False
        body = await reader.readexactly(length)
        connection = headers.get("connection", "").lower()
        keep_alive = connection == "keep-alive" if version == "HTTP/1.0" else connection != "close"

        path = target.split("?", 1)[0]
        started = time.monotonic()
        response, key, attempt, fault, index = await self._dispatch(method, path, headers, body)
        status = 0 if response is None else response[0]
        self._record(
            RequestRecord(
                index,
                method,
                path,
                key,
                attempt,
                fault,
                status,
                started,
                time.monotonic(),
                tuple(headers.items()),
            )
        )
        if response is None:  # a "drop" fault: close without a word
            return False
        if fault == "drip":
            await self._drip(reader, writer, *response)
            return False
        await self._write(writer, *response, keep_alive=keep_alive)
        return keep_alive

    async def _write(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        extra: Sequence[tuple[str, str]],
        *,
        keep_alive: bool,
    ) -> None:
        writer.write(_head(status, len(body), extra, keep_alive=keep_alive) + body)
        await writer.drain()

    async def _drip(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        extra: Sequence[tuple[str, str]],
    ) -> None:
        """Send the headers at once, then the body one byte per ``drip_interval``; stop when
        the client hangs up."""
        writer.write(_head(status, len(body), extra, keep_alive=False))
        await writer.drain()
        for i in range(len(body)):
            await asyncio.sleep(self.drip_interval)
            if reader.at_eof() or writer.is_closing():
                return
            writer.write(body[i : i + 1])
            await writer.drain()

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._requests += 1
            self._by_status[record.status] += 1
            if record.status == 200 and record.path.endswith("/completions"):
                self._completions += 1
            self._records.append(record)

    # -- the protocol ------------------------------------------------------------------------

    async def _dispatch(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[_Response | None, str, int, FaultKind | None, int]:
        """Answer one request: (response or None to drop, key, attempt, fault, index)."""
        if self._api_key is not None and self._api_key not in (
            headers.get("authorization", "").removeprefix("Bearer "),
            headers.get("api-key"),
        ):
            return _error(401, "Incorrect API key provided.", "invalid_api_key"), "", 0, None, -1
        if path == "/v1/models":
            if method != "GET":
                return _error(405, f"use GET for {path}", "method_not_allowed"), "", 0, None, -1
            listing = {
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "sammo"}],
            }
            return (200, orjson.dumps(listing), ()), "", 0, None, -1
        text_completion = bool(_COMPLETIONS_PATH.fullmatch(path))
        if not (text_completion or _CHAT_PATH.fullmatch(path)):
            return _error(404, f"no route for {method} {path}", "not_found"), "", 0, None, -1
        if method != "POST":
            return _error(405, f"use POST for {path}", "method_not_allowed"), "", 0, None, -1
        try:
            payload = orjson.loads(body)
            if text_completion:
                prompt = payload["prompt"]
                if not isinstance(prompt, str) and not (
                    isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str)
                ):
                    raise TypeError("prompt must be a string (one prompt per request)")
            else:
                messages = payload["messages"]
                if not isinstance(messages, list) or not messages:
                    raise TypeError("messages must be a non-empty list")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            return _error(400, f"invalid request body: {exc}", "invalid_request"), "", 0, None, -1

        key = hashlib.sha256(body).hexdigest()[:16]
        with self._lock:
            index = self._chat_index
            self._chat_index += 1
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            fault = self.faults.decide(key, attempt, index)
        try:
            fault, text, error = self._consult_reply(payload, fault)
            if fault is not None:
                with self._lock:  # counted now: a "slow" one may never finish
                    self._by_fault[fault] += 1
            if self.latency:
                await asyncio.sleep(self.latency)
            if fault == "slow":  # a normal answer, too late for a client with a short timeout
                await asyncio.sleep(self.slow_delay)
            response: _Response | None
            if error is not None:
                response = error
            elif fault in (None, "slow", "drip"):  # "drip": a normal answer, sent slowly
                response = self._complete(payload, text, index)
            else:
                response = self._fault(fault)
        finally:
            with self._lock:
                self._in_flight -= 1
        return response, key, attempt, fault, index

    def _consult_reply(
        self, payload: Mapping[str, Any], fault: FaultKind | None
    ) -> tuple[FaultKind | None, str | Answer, _Response | None]:
        """Ask the reply function, unless the planned fault answers without a reply.

        Returns the fault (a :class:`ReplyFault` replaces the planned one), the reply (text or
        :class:`Answer`), and the response to send instead, if any (an error, or a
        :class:`RawAnswer` as it is).
        """
        if fault not in (None, "slow", "drip"):
            return fault, "", None
        try:
            reply = self._reply(payload)
        except ReplyFault as exc:
            if exc.status is not None:
                return None, "", _error(exc.status, exc.message, "reply_fault")
            return exc.kind, exc.message, None
        except Exception as exc:
            detail = f"reply function raised {type(exc).__name__}: {exc}"
            return fault, "", _error(500, detail, "reply_error")
        if isinstance(reply, RawAnswer):
            return fault, "", (reply.status, reply.body, tuple(reply.headers))
        return fault, reply, None

    def _fault(self, fault: FaultKind) -> _Response | None:
        if fault == "429":
            headers = (
                ("Retry-After", f"{self.retry_after:g}"),
                ("retry-after-ms", str(round(self.retry_after * 1000))),
            )
            status, body, _ = _error(429, "Rate limit reached (simulated).", "rate_limit_exceeded")
            return status, body, headers
        if fault in ("500", "503"):
            return _error(int(fault), "The server had an error (simulated).", "server_error")
        if fault == "garbage":
            return 200, _GARBAGE, ()
        return None  # "drop"

    def _complete(self, payload: Mapping[str, Any], reply: str | Answer, index: int) -> _Response:
        shaped = reply if isinstance(reply, Answer) else None
        text = reply if isinstance(reply, str) else reply.text
        finish = "stop"
        stops = payload.get("stop") or ()
        # Cut before the earliest occurrence of any stop sequence, as real servers do.
        ends = [text.find(stop) for stop in ([stops] if isinstance(stops, str) else stops)]
        text = text[: min((end for end in ends if end >= 0), default=len(text))]
        max_tokens = payload.get("max_tokens") or payload.get("max_completion_tokens")
        if isinstance(max_tokens, int):
            text, cut = _truncate(text, max_tokens)
            finish = "length" if cut else finish
        if shaped is not None and shaped.finish_reason is not None:
            finish = shaped.finish_reason
        answer: dict[str, Any] = {
            "id": f"chatcmpl-sammo-{index}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": payload.get("model", self.model),
            "system_fingerprint": "fp_sammo_test",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text
                        if shaped is None or shaped.content is None
                        else shaped.content,
                    },
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
        }
        if "messages" not in payload:
            prompt_text = _prompt_text(payload.get("prompt"))
            answer.update(
                object="text_completion",
                id=f"cmpl-sammo-{index}",
                choices=[
                    {
                        "index": 0,
                        "text": prompt_text + text if payload.get("echo") else text,
                        "finish_reason": finish,
                        "logprobs": self._completion_logprobs(payload, prompt_text, text),
                    }
                ],
            )
        elif payload.get("logprobs") is True and self.logprobs_layout != "none":
            context = "\n\n".join(_content_text(m.get("content")) for m in payload["messages"])
            top = payload.get("top_logprobs") or 0
            answer["choices"][0]["logprobs"] = chat_logprobs(
                context, text, self.logprob, top=top, vocabulary=self.vocabulary
            )
        if self.usage:
            prompt = (
                count_tokens(_prompt_text(payload.get("prompt")))
                if "messages" not in payload
                else sum(count_tokens(_content_text(m.get("content"))) for m in payload["messages"])
            )
            completion = count_tokens(text)
            answer["usage"] = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
        if shaped is not None and shaped.usage is not None:
            usage = shaped.usage
            answer["usage"] = dict(usage) if isinstance(usage, Mapping) else usage
        return 200, orjson.dumps(answer), ()

    def _completion_logprobs(
        self, payload: Mapping[str, Any], prompt: str, text: str
    ) -> dict[str, Any] | None:
        """The ``logprobs`` of a text completion: ``None`` unless asked for with
        ``logprobs=N`` (and the server has them); the prompt's too with ``echo``."""
        top = payload.get("logprobs")
        if not isinstance(top, int) or isinstance(top, bool) or self.logprobs_layout == "none":
            return None
        return completion_logprobs(
            prompt,
            text,
            self.logprob,
            top=top,
            layout=self.logprobs_layout,
            echo=bool(payload.get("echo")),
            vocabulary=self.vocabulary,
        )


def _head(status: int, length: int, extra: Sequence[tuple[str, str]], *, keep_alive: bool) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json",
        f"Content-Length: {length}",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *(f"{name}: {value}" for name, value in extra),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _error(status: int, message: str, code: str) -> _Response:
    body = {"error": {"message": message, "type": "sammo_test_server", "code": code}}
    return status, orjson.dumps(body), ()


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted: ``python -m sammo_core.testing.chat_server --port 8000``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--model", default="sammo-test")
    parser.add_argument("--fault-rate", type=float, default=0.0)
    parser.add_argument(
        "--fault-kinds", default=",".join(FAULT_KINDS), help="comma-separated fault kinds"
    )
    parser.add_argument("--fault-attempts", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--retry-after", type=float, default=0.05)
    parser.add_argument("--slow-delay", type=float, default=5.0)
    parser.add_argument("--drip-interval", type=float, default=1.0, help="seconds per byte")
    parser.add_argument("--api-key", default=None, help="require this key (default: none)")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.fault_kinds.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        parser.error(f"unknown fault kinds {unknown}; use some of {', '.join(FAULT_KINDS)}")
    server = ChatServer(
        latency=args.latency,
        model=args.model,
        fault_rate=args.fault_rate,
        fault_kinds=[k for k in FAULT_KINDS if k in kinds],
        fault_attempts=args.fault_attempts,
        seed=args.seed,
        retry_after=args.retry_after,
        slow_delay=args.slow_delay,
        drip_interval=args.drip_interval,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
    )
    with contextlib.suppress(KeyboardInterrupt), server:
        print(f"serving {server.base_url} (Ctrl-C to stop)", flush=True)
        threading.Event().wait()
    stats = server.stats()
    print(f"served {stats.requests} requests; statuses {stats.by_status}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
