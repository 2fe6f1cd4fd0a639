"""Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document; MCP
authorization 2025-11-25, where an authorization server SHOULD support them).

A client whose ``client_id`` is an ``https`` URL publishes its metadata at that URL; the
server fetches the document instead of keeping a registration:

- the URL (draft §3): ``https``, a path other than ``/``, no ``.`` / ``..`` segments, no
  fragment, no userinfo, and everything the outbound-fetch guard requires
  (:func:`~.outbound.check_url`); a deployment may restrict the hosts it trusts;
- the document (draft §4, MCP): a JSON object whose ``client_id`` equals the URL exactly
  (simple string comparison); ``redirect_uris`` present; no ``client_secret`` and no
  shared-secret authentication method (the document is public, so the client is public:
  ``none``, or ``private_key_jwt`` with its keys); every other member validated as RFC 7591
  metadata (:func:`~.registration.parse_client_metadata`), so its ``redirect_uris`` bind the
  authorization request exactly as a registration would;
- caching (RFC 9111 via :func:`~.outbound.cache_lifetime`): a document is reused for its
  ``Cache-Control`` lifetime, clamped between a floor and a ceiling, ``no-store`` never; a
  failed fetch or an invalid document is remembered for ``negative_ttl`` seconds, so a
  client cannot make the server fetch on every request (DESIGN.md D18). Documents are kept
  in memory, per process, unless a :class:`MetadataDocumentCache` is given (the SQL one
  shares them across nodes and restarts); a cached document is validated again on every
  use, so a changed policy applies to it at once.

The fetch itself is a :class:`~.outbound.DocumentFetcher` (in production
:class:`pyramid_attesto.fetch.GuardedFetcher`); tests inject their own. A client resolved
here is a :class:`~.registration.DynamicClient` with ``source="metadata_document"``: not
pre-trusted (D16), and the consent page must show the redirect URI's host (MCP).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

from .clients import AuthMethod, Client, ClientStore
from .clock import Clock
from .errors import InvalidClient, OAuthError
from .outbound import DocumentFetcher, FetchRefused, TTLCache, cache_lifetime, check_url
from .registration import DynamicClient, RegistrationPolicy, parse_client_metadata
from .scopes import ScopeCatalog

__all__ = [
    "CachedDocument",
    "MetadataDocumentCache",
    "MetadataDocumentClientStore",
    "MetadataDocumentPolicy",
    "MetadataDocumentResolver",
    "is_metadata_document_client_id",
    "parse_metadata_document",
    "redirect_host",
    "validate_client_id_url",
]

logger = logging.getLogger("pyramid_attesto.cimd")

_SHARED_SECRET_METHODS: Final = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
)
_DOT_SEGMENT: Final = re.compile(r"\A(?:\.|%2[Ee]){1,2}\Z")


def _refuse(description: str, reason: str) -> InvalidClient:
    error = InvalidClient(description, reason=reason)
    error.status = 400  # no HTTP authentication scheme is involved
    return error


def is_metadata_document_client_id(client_id: str) -> bool:
    """Whether ``client_id`` is meant as a metadata document URL (it starts with https://)."""
    return client_id.startswith("https://")


def validate_client_id_url(client_id: str) -> None:
    """Raise ``invalid_client`` unless ``client_id`` is a usable document URL (draft §3)."""
    try:
        check_url(client_id)
    except FetchRefused as refused:
        raise _refuse("the client_id URL cannot be fetched", f"cimd_{refused.reason}") from None
    path = urlsplit(client_id).path
    if not path or path == "/":
        raise _refuse("the client_id URL must have a path", "cimd_no_path")
    if any(_DOT_SEGMENT.match(segment) for segment in path.split("/")):
        raise _refuse("the client_id URL must not have dot segments", "cimd_dot_segment")


def redirect_host(redirect_uri: str) -> str:
    """The host a consent page must show for a metadata-document client (MCP 2025-11-25),
    or the scheme of a private-use redirect URI."""
    parts = urlsplit(redirect_uri)
    return parts.hostname or parts.scheme


@dataclass(frozen=True, kw_only=True)
class MetadataDocumentPolicy:
    """What the server accepts from metadata documents.

    ``allowed_hosts`` (empty: any host) and ``blocked_hosts`` are compared with the URL's
    host name. Cache times are seconds: ``cache_floor`` / ``cache_ceiling`` bound the
    ``Cache-Control`` lifetime, ``cache_default`` applies without one. The signing
    algorithms a document may name are those of :class:`~.registration.RegistrationPolicy`
    (exactly what the server enforces; empty: the member is refused).
    """

    allowed_hosts: frozenset[str] = frozenset()
    blocked_hosts: frozenset[str] = frozenset()
    allow_localhost: bool = True
    grant_types: frozenset[str] = frozenset({"authorization_code", "refresh_token"})
    catalog: ScopeCatalog = field(default_factory=lambda: ScopeCatalog.of(()))
    default_scope: str | None = None
    cache_floor: int = 60
    cache_ceiling: int = 86_400
    cache_default: int = 300
    cache_size: int = 1024
    negative_ttl: int = 60
    request_object_algorithms: frozenset[str] = frozenset()
    authorization_signing_algorithms: frozenset[str] = frozenset()
    introspection_signing_algorithms: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not 0 <= self.cache_floor <= self.cache_ceiling or self.cache_size < 1:
            raise ValueError("metadata document cache bounds are inconsistent")
        if self.negative_ttl < 0:
            raise ValueError("negative_ttl must not be negative")

    def registration_policy(self) -> RegistrationPolicy:
        methods: frozenset[AuthMethod] = frozenset({"none", "private_key_jwt"})
        return RegistrationPolicy(
            registration_endpoint="urn:attesto:cimd",  # no RFC 7592 endpoint for documents
            auth_methods=methods,
            grant_types=self.grant_types & {"authorization_code", "refresh_token"},
            catalog=self.catalog,
            default_scope=self.default_scope,
            allow_localhost=self.allow_localhost,
            request_object_algorithms=self.request_object_algorithms,
            authorization_signing_algorithms=self.authorization_signing_algorithms,
            introspection_signing_algorithms=self.introspection_signing_algorithms,
        )


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate member")
    return result


def parse_metadata_document(
    client_id: str, body: bytes, policy: MetadataDocumentPolicy, *, issued_at: int = 0
) -> DynamicClient:
    """Validate the document fetched from ``client_id`` (draft §4); ``invalid_client``
    with a ``cimd_*`` reason otherwise."""
    try:
        document = json.loads(body.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError):
        raise _refuse("the client metadata document is not JSON", "cimd_not_json") from None
    if not isinstance(document, dict):
        raise _refuse("the client metadata document is not a JSON object", "cimd_not_object")
    if document.get("client_id") != client_id:
        raise _refuse(
            "the client metadata document names another client_id", "cimd_client_id_mismatch"
        )
    if "client_secret" in document or "client_secret_expires_at" in document:
        raise _refuse("a client metadata document must not hold a secret", "cimd_shared_secret")
    if document.get("token_endpoint_auth_method") in _SHARED_SECRET_METHODS:
        raise _refuse("a client metadata document cannot use a shared secret", "cimd_shared_secret")
    if not document.get("redirect_uris"):
        raise _refuse("the client metadata document has no redirect_uris", "cimd_no_redirect")
    try:
        metadata = parse_client_metadata(
            document,
            policy.registration_policy(),
            default_auth_method="none",
            substitute_auth_method=False,
        )
    except OAuthError as error:
        raise _refuse(
            "the client metadata document is invalid", f"cimd_{error.reason or error.error}"
        ) from None
    return metadata.to_client(client_id, source="metadata_document", issued_at=issued_at)


@dataclass(frozen=True, slots=True)
class CachedDocument:
    """A fetched metadata document (the JSON object) and when its cache lifetime ends
    (epoch seconds)."""

    document: Mapping[str, Any]
    expires_at: int


class MetadataDocumentCache(Protocol):
    """Where fetched documents are kept between requests, shared by every node that uses
    the same cache (:class:`pyramid_attesto.storage.SqlMetadataDocumentCache`)."""

    def get(self, url: str) -> CachedDocument | None:
        """The document cached for ``url`` if its lifetime has not ended, else ``None``."""
        ...

    def put(self, url: str, entry: CachedDocument) -> None:
        """Keep ``entry`` for ``url`` until ``entry.expires_at`` (replacing what was there)."""
        ...

    def discard(self, url: str) -> None:
        """Forget ``url``."""
        ...


class MetadataDocumentResolver:
    """Resolve ``https`` client identifiers through a fetcher, with a bounded cache of
    documents (in memory, or the shared ``cache``) and of failures (in memory)."""

    def __init__(
        self,
        fetcher: DocumentFetcher,
        policy: MetadataDocumentPolicy,
        *,
        clock: Clock,
        cache: MetadataDocumentCache | None = None,
    ) -> None:
        self._fetcher = fetcher
        self.policy = policy
        self._clock = clock
        self._cache = cache
        self._clients: TTLCache[str, DynamicClient] = TTLCache(policy.cache_size, clock)
        self._failures: TTLCache[str, str] = TTLCache(policy.cache_size, clock)

    def resolve(self, client_id: str) -> DynamicClient:
        """The client described at ``client_id``; ``invalid_client`` otherwise."""
        if self._cache is None:
            cached = self._clients.get(client_id)
            if cached is not None:
                return cached
        reason = self._failures.get(client_id)
        if reason is not None:
            raise _refuse("the client metadata document is unavailable", reason)
        try:
            self._check(client_id)
            client = self._shared(client_id)
            if client is None:
                client = self._load(client_id)
        except InvalidClient as error:
            self._failures.put(client_id, error.reason or "cimd_invalid", self.policy.negative_ttl)
            logger.info("client metadata document refused: %s (%s)", client_id, error.reason)
            raise
        return client

    def _check(self, client_id: str) -> None:
        validate_client_id_url(client_id)
        host = (urlsplit(client_id).hostname or "").lower()
        policy = self.policy
        if host in policy.blocked_hosts or (
            policy.allowed_hosts and host not in policy.allowed_hosts
        ):
            raise _refuse("this client host is not trusted here", "cimd_host_not_allowed")

    def _shared(self, client_id: str) -> DynamicClient | None:
        if self._cache is None:
            return None
        entry = self._cache.get(client_id)
        if entry is None:
            return None
        body = json.dumps(dict(entry.document)).encode("utf-8")
        return parse_metadata_document(
            client_id, body, self.policy, issued_at=int(self._clock.now())
        )

    def _load(self, client_id: str) -> DynamicClient:
        policy = self.policy
        try:
            document = self._fetcher.fetch(client_id)
        except FetchRefused as refused:
            raise _refuse(
                "the client metadata document could not be fetched", f"cimd_{refused.reason}"
            ) from None
        client = parse_metadata_document(
            client_id, document.body, policy, issued_at=int(self._clock.now())
        )
        ttl = cache_lifetime(
            document.headers,
            floor=policy.cache_floor,
            ceiling=policy.cache_ceiling,
            default=policy.cache_default,
        )
        if self._cache is None:
            self._clients.put(client_id, client, ttl)
        elif ttl > 0:
            parsed = json.loads(document.body.decode("utf-8"))  # valid: it was just parsed
            self._cache.put(client_id, CachedDocument(parsed, int(self._clock.now()) + ttl))
        return client

    def forget(self, client_id: str) -> None:
        """Drop what is cached about ``client_id`` (a host's admin action)."""
        self._clients.discard(client_id)
        self._failures.discard(client_id)
        if self._cache is not None:
            self._cache.discard(client_id)


class MetadataDocumentClientStore:
    """A :class:`~.clients.ClientStore` that resolves ``https`` client identifiers as
    metadata documents and asks the host's store (when given) for every other one."""

    def __init__(self, resolver: MetadataDocumentResolver, host: ClientStore | None = None):
        self._resolver = resolver
        self._host = host

    def load_client(self, client_id: str) -> Client | None:
        if not is_metadata_document_client_id(client_id):
            return self._host.load_client(client_id) if self._host is not None else None
        try:
            return self._resolver.resolve(client_id)
        except InvalidClient:
            return None

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        if isinstance(client, DynamicClient) and client.source == "metadata_document":
            return False  # a public document never has a secret
        return self._host is not None and self._host.verify_client_secret(client, secret)

    def client_secret_for_jwt(self, client: Client) -> str | None:
        if isinstance(client, DynamicClient) or self._host is None:
            return None
        return self._host.client_secret_for_jwt(client)
