"""The outbound-fetch guard: the one way this package reaches out to the network (D18).

:class:`GuardedFetcher` implements :class:`~pyramid_attesto.core.outbound.DocumentFetcher`
for Client ID Metadata Documents and trusted issuers' ``jwks_uri``. Each fetch:

1. checks the URL (:func:`~pyramid_attesto.core.outbound.check_url`: https only, no
   userinfo, no numeric host forms);
2. answers from the negative cache (a URL that failed recently fails again without a
   request) and the per-host backoff (after a host failed to resolve, connect, complete TLS
   or answer in time; not after a status, size or redirect refusal of one URL);
3. takes a slot of the global in-flight cap, without waiting (``busy`` when none is free);
4. resolves the host **once** (within the deadline: the resolver runs in a thread that is
   abandoned when the deadline passes) and checks **every** address it resolved to
   (:func:`~pyramid_attesto.core.outbound.is_public_address`); then connects to one of those
   checked addresses, never to the name again, so DNS rebinding between check and connect
   is impossible. TLS is verified against the host name (SNI and ``Host`` are the name);
5. sends one ``GET`` and accepts only ``200``: a redirect is refused, never followed; a
   ``Content-Encoding`` other than identity is refused;
6. reads at most ``max_bytes`` (5 KB by default; more is ``too_large``) under a connect
   timeout, a per-read timeout and an overall deadline enforced by a watchdog that shuts
   the socket down, so a server that drips bytes cannot hold a worker.

Tests inject the resolver, the address check and the TLS context (a loopback test server);
nothing here is meant to be pointed at private addresses in production.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from .core.clock import Clock, SystemClock
from .core.outbound import (
    MAX_DOCUMENT_BYTES,
    FetchedDocument,
    FetchRefused,
    FetchTarget,
    HostBackoff,
    IPAddress,
    TTLCache,
    check_url,
    is_public_address,
)

__all__ = ["FetchLimits", "GuardedFetcher", "Resolver", "system_resolver"]

# Failures that say the host is unwell (it backs off). A 404, a redirect or an oversized
# document says something about one URL only: negative-cached, but it does not back the host
# off, or anyone could lock a real client's host out by asking for missing documents on it.
_HOST_FAILURES = frozenset({"dns", "connect", "tls", "timeout"})


class Resolver(Protocol):
    """Resolves a host name to IP address strings (``getaddrinfo`` semantics)."""

    def __call__(self, host: str, port: int) -> Sequence[str]: ...


def system_resolver(host: str, port: int) -> Sequence[str]:
    """The system resolver: every TCP address of ``host``, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """The guard's bounds. Times in seconds."""

    max_bytes: int = MAX_DOCUMENT_BYTES
    connect_timeout: float = 3.0
    read_timeout: float = 3.0
    deadline: float = 5.0
    max_in_flight: int = 8
    negative_ttl: float = 60.0
    backoff_base: float = 10.0
    backoff_max: float = 900.0
    tracked_hosts: int = 1024

    def __post_init__(self) -> None:
        if self.max_bytes < 1 or self.max_in_flight < 1 or self.tracked_hosts < 1:
            raise ValueError("fetch limits must be positive")
        if min(self.connect_timeout, self.read_timeout, self.deadline) <= 0:
            raise ValueError("fetch timeouts must be positive")


class GuardedFetcher:
    """Fetch small JSON documents from the public internet, and only from there."""

    def __init__(
        self,
        limits: FetchLimits | None = None,
        *,
        clock: Clock | None = None,
        resolver: Resolver = system_resolver,
        address_allowed: Callable[[IPAddress], bool] = is_public_address,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "pyramid_attesto",
    ) -> None:
        self.limits = limits or FetchLimits()
        self._clock = clock or SystemClock()
        self._resolver = resolver
        self._address_allowed = address_allowed
        self._context = ssl_context or ssl.create_default_context()
        self._user_agent = user_agent
        self._slots = threading.BoundedSemaphore(self.limits.max_in_flight)
        self._failed: TTLCache[str, str] = TTLCache(self.limits.tracked_hosts, self._clock)
        self._backoff = HostBackoff(
            self._clock,
            base=self.limits.backoff_base,
            maximum=self.limits.backoff_max,
            size=self.limits.tracked_hosts,
        )

    def fetch(self, url: str) -> FetchedDocument:
        """The document at ``url``, or :class:`~pyramid_attesto.core.outbound.FetchRefused`."""
        target = check_url(url)
        reason = self._failed.get(url)
        if reason is not None:
            raise FetchRefused(reason, "the URL failed recently; try again later")
        self._backoff.check(target.host)
        if not self._slots.acquire(blocking=False):
            raise FetchRefused("busy", "too many outbound fetches in flight")
        try:
            document = self._fetch(target)
        except FetchRefused as refused:
            self._failed.put(url, refused.reason, self.limits.negative_ttl)
            if refused.reason in _HOST_FAILURES:
                self._backoff.failure(target.host)
            raise
        finally:
            self._slots.release()
        self._backoff.success(target.host)
        return document

    # -- steps ------------------------------------------------------------------------------

    def _resolve(self, target: FetchTarget, started: float) -> Sequence[str]:
        """The resolver's answer within the deadline: ``getaddrinfo`` has no timeout of its
        own, so it runs in a daemon thread that is abandoned when the deadline passes."""
        answer: list[Sequence[str]] = []
        failed: list[BaseException] = []

        def run() -> None:
            try:
                answer.append(self._resolver(target.host, target.port))
            except Exception as exc:  # reported below, never lost in the thread
                failed.append(exc)

        worker = threading.Thread(target=run, daemon=True, name="attesto-resolve")
        worker.start()
        worker.join(max(0.0, self._remaining(started)))
        if worker.is_alive():
            raise FetchRefused("timeout", "the host name did not resolve in time")
        if failed or not answer:
            raise FetchRefused("dns", "the host name did not resolve")
        return answer[0]

    def _addresses(self, target: FetchTarget, started: float) -> list[IPAddress]:
        if target.address is not None:
            found: list[IPAddress] = [target.address]
        else:
            names = self._resolve(target, started)
            try:
                found = [ipaddress.ip_address(str(name).partition("%")[0]) for name in names]
            except ValueError:
                raise FetchRefused("dns", "the host name did not resolve") from None
        if not found:
            raise FetchRefused("dns", "the host name did not resolve")
        # Every address, not only the one we pick: a name that resolves to a private
        # address at all is refused.
        if not all(self._address_allowed(address) for address in found):
            raise FetchRefused("private_address", "the host resolves to a non-public address")
        return found

    def _fetch(self, target: FetchTarget) -> FetchedDocument:
        started = time.monotonic()
        addresses = self._addresses(target, started)
        sock = self._connect(target, addresses, started)
        expired = threading.Event()

        def abort() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

        watchdog = threading.Timer(max(0.0, self._remaining(started)), abort)
        watchdog.daemon = True
        watchdog.start()
        try:
            return self._exchange(target, sock, started, expired)
        except TimeoutError:
            raise FetchRefused("timeout", "the server was too slow") from None
        except (ssl.SSLError, ssl.CertificateError, OSError, http.client.HTTPException):
            if expired.is_set():
                raise FetchRefused("timeout", "the server was too slow") from None
            raise FetchRefused("http", "the response could not be read") from None
        finally:
            watchdog.cancel()
            sock.close()

    def _remaining(self, started: float) -> float:
        return self.limits.deadline - (time.monotonic() - started)

    def _connect(
        self, target: FetchTarget, addresses: list[IPAddress], started: float
    ) -> ssl.SSLSocket:
        for address in addresses:
            remaining = self._remaining(started)
            if remaining <= 0:
                raise FetchRefused("timeout", "the server was too slow")
            try:
                raw = socket.create_connection(
                    (str(address), target.port),
                    timeout=min(self.limits.connect_timeout, remaining),
                )
            except OSError:
                continue
            try:
                raw.settimeout(min(self.limits.read_timeout, remaining))
                return self._context.wrap_socket(raw, server_hostname=target.host)
            except TimeoutError:
                raw.close()
                raise FetchRefused("timeout", "the TLS handshake was too slow") from None
            except (ssl.SSLError, ssl.CertificateError, OSError):
                raw.close()
                raise FetchRefused("tls", "the TLS handshake failed") from None
        raise FetchRefused("connect", "the host could not be reached")

    def _exchange(
        self, target: FetchTarget, sock: ssl.SSLSocket, started: float, expired: threading.Event
    ) -> FetchedDocument:
        connection = http.client.HTTPSConnection(target.host, target.port, context=self._context)
        connection.sock = sock  # already connected to the checked address: never reconnect
        try:
            return self._read(connection, target, started, expired)
        finally:
            connection.close()  # closes the response's file object too

    def _read(
        self,
        connection: http.client.HTTPSConnection,
        target: FetchTarget,
        started: float,
        expired: threading.Event,
    ) -> FetchedDocument:
        connection.request(
            "GET",
            target.target,
            headers={
                "Accept": "application/json",
                "Accept-Encoding": "identity",
                "User-Agent": self._user_agent,
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        try:
            return self._body(response, target, started, expired)
        finally:
            response.close()

    def _body(
        self,
        response: http.client.HTTPResponse,
        target: FetchTarget,
        started: float,
        expired: threading.Event,
    ) -> FetchedDocument:
        if 300 <= response.status < 400:
            raise FetchRefused("redirect", "redirects are not followed")
        if response.status != 200:
            raise FetchRefused("status", "the server did not answer 200")
        headers = {name.lower(): value for name, value in response.getheaders()}
        if headers.get("content-encoding", "identity").strip().lower() != "identity":
            raise FetchRefused("encoding", "the response is encoded")
        limit = self.limits.max_bytes
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > limit:
            raise FetchRefused("too_large", "the document is too large")
        body = bytearray()
        while True:
            if expired.is_set() or self._remaining(started) <= 0:
                raise FetchRefused("timeout", "the server was too slow")
            chunk = response.read1(limit + 1 - len(body))
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                raise FetchRefused("too_large", "the document is too large")
        if expired.is_set():
            raise FetchRefused("timeout", "the server was too slow")
        return FetchedDocument(url=target.url, body=bytes(body), headers=headers)
