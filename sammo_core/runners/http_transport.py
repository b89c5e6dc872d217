"""The HTTP hot path of the OpenAI-compatible runner: ready-made bodies over pooled connections.

:class:`HttpTransport` POSTs pre-serialized JSON bytes to a path under one base URL and returns
the reply's bytes. Headers, query and URLs are built once, connections are kept alive in a pool
sized to the runner's concurrency, and nothing is parsed or copied on the way that the caller
does not need. It runs on aiohttp, whose C-accelerated HTTP parser and lean request path cost
about a quarter of the CPU per request that the openai client's stack (httpx, httpcore, anyio,
request models) costs; that CPU is what capped one process's throughput at high concurrency
(see ``benchmarks/harness/throughput.py``). Failures come back as exceptions the caller maps to
its own:
:class:`HttpStatusError` (an answer with status >= 400: status, headers, body),
:class:`HttpConnectionError` (no answer: refused, reset, dropped mid-body, bad TLS),
:class:`HttpRedirectError` (a redirect to another origin, or too many) and
:class:`HttpBodyTooLargeError` (a body longer than ``max_body_bytes`` once decoded).

Redirects are followed only within the base URL's origin (scheme, host and port), POSTing the same
body again: the headers carry credentials (OpenAI's ``Authorization``, Azure's ``api-key``), and
another host must never see them. A body is read up to ``max_body_bytes`` *decoded* bytes, so a
gzip body that inflates a thousandfold costs no more memory than a plain one.

Connections belong to the event loop that opened them: the transport opens a pool on first use in
a loop, and a new one in the next loop. They are closed by :meth:`HttpTransport.aclose`, or at the
latest when ``asyncio.run()`` finishes (it cancels leftover tasks, and a watcher task then closes
the pool). There is no timeout here: the caller puts a deadline around the whole exchange.

>>> import asyncio, orjson
>>> from sammo_core.testing.chat_server import ChatServer
>>> body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
>>> async def ask(base_url: str) -> bytes:
...     transport = HttpTransport(base_url, {"Content-Type": "application/json"})
...     try:
...         return await transport.post("/chat/completions", body)
...     finally:
...         await transport.aclose()
>>> with ChatServer() as server:
...     reply = orjson.loads(asyncio.run(ask(server.base_url)))
>>> reply["choices"][0]["message"]["content"]
'echo: hi'
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp
    import yarl

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "HttpBodyTooLargeError",
    "HttpConnectionError",
    "HttpRedirectError",
    "HttpStatusError",
    "HttpTransport",
]

DEFAULT_MAX_BODY_BYTES = 64 * 2**20
"""The most bytes of a reply body read, decoded (a long prompt's echoed log-probabilities fit)."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5


class HttpStatusError(Exception):
    """The server answered with an HTTP status of 400 or more.

    ``content`` is the whole body, raw; it may quote secrets, so it is not in ``str(self)``.
    """

    def __init__(self, status: int, headers: Mapping[str, str], content: bytes) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = headers
        self.content = content


class HttpConnectionError(Exception):
    """No whole answer came: the connection failed, was refused, or dropped mid-answer."""


class HttpRedirectError(Exception):
    """A redirect that was not followed: to another origin (``target`` names that origin, never
    the whole URL, which may hold secrets), to a Location that does not parse, or one too many.
    """

    def __init__(self, status: int, why: str, target: str | None = None) -> None:
        super().__init__(f"HTTP {status} {why}")
        self.status = status
        self.target = target


class HttpBodyTooLargeError(Exception):
    """The reply's body, decoded, is longer than ``limit`` bytes; the rest was not read."""

    def __init__(self, limit: int, status: int) -> None:
        super().__init__(f"HTTP {status} body longer than {limit:,} bytes (decoded)")
        self.limit = limit
        self.status = status


class HttpTransport:
    """POSTs ready-made bodies under ``base_url`` over at most ``max_connections`` connections.

    Args:
        base_url: the root every path is appended to, e.g. ``http://127.0.0.1:8000/v1``.
        headers: sent with every request (authentication, content type, user agent).
        query: query parameters sent with every request (Azure's ``api-version``).
        max_connections: the pool's size; also the most connections kept alive between calls.
        max_body_bytes: the most bytes of a reply body read, decoded (``None``: no cap).

    Proxies are taken from the usual environment variables (``HTTPS_PROXY``, ``NO_PROXY``, ...),
    as the openai client does.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        query: Mapping[str, str] | None = None,
        max_connections: int = 32,
        max_body_bytes: int | None = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_connections = max_connections
        self.max_body_bytes = max_body_bytes
        self._headers = dict(headers)
        self._query = dict(query or {})
        self._urls: dict[str, tuple[yarl.URL, str | None]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._closer: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # headers left out: they hold the key
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, "
            f"max_connections={self.max_connections})"
        )

    def _url(self, path: str) -> tuple[yarl.URL, str | None]:
        """The parsed URL for ``path`` and the proxy to reach it through, found once per path.

        The environment is read here, not per request: aiohttp's ``trust_env`` would read it
        on a worker thread for every request, which costs more CPU than the request itself.
        """
        found = self._urls.get(path)
        if found is None:
            import yarl

            url = yarl.URL(self.base_url + path)
            if self._query:
                url = url.update_query(self._query)
            found = self._urls[path] = (url, _proxy_from_environment(url))
        return found

    def _session_for_this_loop(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or self._session_loop is not loop:
            import aiohttp

            # Every keep-alive connection is reused; the runner's deadline replaces aiohttp's
            # own timeouts (a timer each per request, and a per-read limit is not a deadline);
            # APIs authenticate by header, and a cookie jar costs a lookup per request.
            connector = aiohttp.TCPConnector(limit=self.max_connections, limit_per_host=0)
            session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=aiohttp.ClientTimeout(),
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._session, self._session_loop = session, loop
            self._closer = loop.create_task(self._close_when_cancelled(session))
        return session

    async def _close_when_cancelled(self, session: aiohttp.ClientSession) -> None:
        """Wait until cancelled, then close ``session``'s connections.

        ``asyncio.run()`` cancels leftover tasks before it closes its loop, so a transport used
        without :meth:`aclose` still closes its connections in time.
        """
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            if self._session is session:
                self._session = self._session_loop = self._closer = None
            await session.close()
            await asyncio.sleep(0)  # the closed sockets' callbacks run before the loop ends

    async def aclose(self) -> None:
        """Close the connections of this loop's pool; a later call opens new ones."""
        closer = self._closer
        if closer is not None and not closer.done():
            closer.cancel()
            await asyncio.wait([closer])

    async def post(self, path: str, body: bytes) -> bytes:
        """POST ``body`` (JSON bytes) to ``path`` under the base URL; the reply's whole body.

        Raises:
            HttpStatusError: the server answered with status >= 400.
            HttpConnectionError: no whole answer (connection refused, reset or dropped).
            HttpRedirectError: a redirect to another origin, or more than five.
            HttpBodyTooLargeError: a body longer than ``max_body_bytes``, decoded.
        """
        import aiohttp

        session = self._session_for_this_loop()
        url, proxy = self._url(path)
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                async with session.post(
                    url, data=body, proxy=proxy, allow_redirects=False
                ) as response:
                    status = response.status
                    location = response.headers.get("Location") if status in _REDIRECTS else None
                    if location is None:
                        content = await self._read(response)
                        if status >= 400:
                            raise HttpStatusError(status, response.headers, content)
                        return content
                url = _same_origin_target(url, location, status)
                proxy = _proxy_from_environment(url)
            raise HttpRedirectError(status, f"more than {_MAX_REDIRECTS} times")
        except aiohttp.ClientError as exc:
            # ClientResponseError is raised only for a malformed answer here (raise_for_status
            # is off), so every ClientError means that no whole answer came.
            raise HttpConnectionError(f"{type(exc).__name__}: {exc}") from exc

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        """The body of ``response``, decoded, or :class:`HttpBodyTooLargeError` past the cap."""
        limit = self.max_body_bytes
        if limit is None:
            return await response.read()
        length = response.content_length
        if length is not None and "Content-Encoding" not in response.headers:
            if length > limit:
                raise HttpBodyTooLargeError(limit, response.status)
            return await response.read()  # the common case: one read of a known length
        # Compressed or of unknown length: read what arrives, decoded, up to the cap.
        buffer = bytearray()
        while chunk := await response.content.readany():
            buffer += chunk
            if len(buffer) > limit:
                raise HttpBodyTooLargeError(limit, response.status)
        return bytes(buffer)


def _same_origin_target(url: yarl.URL, location: str, status: int) -> yarl.URL:
    """Where a redirect from ``url`` to ``location`` goes, if within ``url``'s origin.

    >>> import yarl
    >>> here = yarl.URL("http://127.0.0.1:8000/v1/chat/completions")
    >>> str(_same_origin_target(here, "/v1/chat/completions/", 307))
    'http://127.0.0.1:8000/v1/chat/completions/'
    >>> _same_origin_target(here, "http://127.0.0.1:9000/v1/x?key=secret", 307)
    Traceback (most recent call last):
    ...
    sammo_core.runners.http_transport.HttpRedirectError: HTTP 307 to another origin, \
http://127.0.0.1:9000
    """
    import yarl

    try:
        target = url.join(yarl.URL(location))
        origin = target.origin()
    except ValueError:
        raise HttpRedirectError(status, "to a Location that does not parse") from None
    if origin != url.origin():
        raise HttpRedirectError(status, f"to another origin, {origin}", str(origin))
    return target


def _proxy_from_environment(url: yarl.URL) -> str | None:
    """The proxy for ``url`` from ``HTTP(S)_PROXY`` and ``NO_PROXY`` (as urllib reads them).

    >>> import os, yarl
    >>> from unittest import mock
    >>> env = {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "localhost,127.0.0.1"}
    >>> with mock.patch.dict(os.environ, env, clear=True):
    ...     remote = _proxy_from_environment(yarl.URL("https://api.example.test/v1/x"))
    ...     local = _proxy_from_environment(yarl.URL("http://127.0.0.1:8000/v1/x"))
    >>> remote, local
    ('http://proxy.test:3128', None)
    """
    import urllib.request

    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.scheme)
    if not proxy or urllib.request.proxy_bypass(url.host or ""):  # reads NO_PROXY
        return None
    return proxy
