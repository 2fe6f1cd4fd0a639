"""Which stores a request uses (DESIGN.md "Storage", rule 3).

``attesto.storage`` chooses:

``memory``
    One :class:`~pyramid_attesto.storage.MemoryStorage` for the process (tests, scripts,
    a single-process server). The default when no database is configured.
``sqlalchemy``
    The attesto tables in the database of ``attesto.sqlalchemy.url`` (PostgreSQL or SQLite).
    Under pyramid_tm each request gets a session joined to ``request.tm``
    (:func:`~pyramid_attesto.storage.get_tm_session`), so the stores' writes commit or abort
    with the request; without pyramid_tm every store operation runs in its own transaction.
    The default when the URL is set.
``dbsession``
    The host's own ``request.dbsession`` (the Pyramid cookiecutter's zope.sqlalchemy
    session): the attesto tables live in the host's database and commit with the host's
    transaction.

The stores of a request are built once (``request.attesto_stores``).

Dynamically registered clients (``attesto.registration_store = sqlalchemy``,
:meth:`StoreFactory.registration_store`) and the Client ID Metadata Document cache
(:meth:`StoreFactory.metadata_document_cache`, used whenever a database is configured) live
in the same database. Their stores are made once, at startup, because the client stores that
use them are; each operation then runs in the transaction of the request being served
(:func:`pyramid.threadlocal.get_current_request`), through the same session as the request's
other stores, so one request never holds two connections (DESIGN.md rule 3). Outside a
request (a script) each operation is its own transaction on ``attesto.sqlalchemy.url``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from .core.clock import Clock
from .core.errors import ConfigurationError
from .core.stores import Stores
from .settings import AttestoSettings

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from .core.cimd import MetadataDocumentCache
    from .core.registration import RegistrationStore
    from .storage import SqlSource

__all__ = ["LazyStores", "StoreFactory", "make_store_factory"]

_SOURCE_KEY = "_attesto_sql_source"
_STORE_NAMES = ("codes", "refresh_tokens", "nonces", "replay", "requests", "revoked_access_tokens")


class LazyStores:
    """The stores of one request, built on first use: a request that touches no store (a
    Bearer client_credentials grant) opens no session and joins no transaction (rule 11)."""

    __slots__ = ("_build", "_stores")

    def __init__(self, build: Any) -> None:
        self._build = build
        self._stores: Stores | None = None

    def _get(self) -> Stores:
        if self._stores is None:
            self._stores = self._build()
        return self._stores

    def __getattr__(self, name: str) -> Any:
        if name in _STORE_NAMES:
            return _StoreProxy(self, name)
        raise AttributeError(name)


class _StoreProxy:
    """One store of a :class:`LazyStores`; the stores are built when a method is looked up."""

    __slots__ = ("_name", "_owner")

    def __init__(self, owner: LazyStores, name: str) -> None:
        self._owner = owner
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(self._owner._get(), self._name), attr)


class StoreFactory:
    """Builds the :class:`~pyramid_attesto.core.stores.Stores` of one request."""

    def __init__(self, mode: str, clock: Clock, settings: AttestoSettings) -> None:
        self.mode = mode
        self._clock = clock
        self._secret = settings.refresh_successor_secret
        self._memory: Stores | None = None
        self._sql: dict[str, Any] = {}
        self._engine: Any = None
        self._session_factory: Any = None
        self._tm_session_factory: Any = None
        self._shared_tm: Any = None
        if mode == "memory":
            from .storage import MemoryStorage

            self._memory = MemoryStorage(clock, successor_secret=self._secret).stores
        elif mode == "sqlalchemy":
            from .storage import make_engine, make_session_factory

            if not settings.sqlalchemy_url:
                raise ConfigurationError(
                    "attesto.storage = sqlalchemy needs attesto.sqlalchemy.url"
                )
            self._engine = make_engine(settings.sqlalchemy_url)
            self._session_factory = make_session_factory(self._engine)
            # Registered once with the thread-local transaction manager (pyramid_tm's
            # default): a request then pays for a Session, not for seven event listeners.
            import transaction
            import zope.sqlalchemy

            self._shared_tm = transaction.manager
            self._tm_session_factory = make_session_factory(self._engine)
            zope.sqlalchemy.register(self._tm_session_factory, transaction_manager=self._shared_tm)

    @property
    def engine(self) -> Any:
        """The engine of ``attesto.sqlalchemy.url`` (``None`` in the other modes)."""
        return self._engine

    def outside_requests(self) -> Stores | None:
        """Stores whose every operation is its own short transaction, shared by every node
        that shares this storage: what the resource server's DPoP replay claim and
        revocation check use (DESIGN.md rule 3's one exception). The memory stores in
        ``memory`` mode; ``None`` for ``dbsession``, whose session exists only in a request."""
        if self._memory is not None:
            return self._memory
        if self._engine is None:
            return None
        stores: Stores = self._storage(self._engine.dialect.name).for_engine(self._engine)
        return stores

    def _storage(self, dialect: str) -> Any:
        storage = self._sql.get(dialect)
        if storage is None:
            from .storage import SqlStorage

            storage = SqlStorage(dialect, clock=self._clock, successor_secret=self._secret)
            self._sql[dialect] = storage
        return storage

    def __call__(self, request: Any) -> Stores:
        if self._memory is not None:
            return self._memory
        dialect, source = self.request_source(request)
        stores: Stores = self._storage(dialect).bind(source)
        return stores

    def request_source(self, request: Any) -> tuple[str, SqlSource]:
        """The dialect and the :class:`~pyramid_attesto.storage.SqlSource` of ``request``'s
        transaction, made once per request: every SQL store of a request shares them."""
        cached: tuple[str, SqlSource] | None = vars(request).get(_SOURCE_KEY)
        if cached is None:
            cached = self._make_source(request)
            vars(request)[_SOURCE_KEY] = cached
        return cached

    def _make_source(self, request: Any) -> tuple[str, SqlSource]:
        from .storage import EngineSource, SessionSource

        if self.mode == "dbsession":
            session = getattr(request, "dbsession", None)
            if session is None:
                raise ConfigurationError(
                    "attesto.storage = dbsession needs the host's request.dbsession"
                )
            return session.get_bind().dialect.name, SessionSource(session)
        dialect = self._engine.dialect.name
        tm = getattr(request, "tm", None)
        if tm is None:
            return dialect, EngineSource(self._engine)
        if tm is self._shared_tm:
            session = self._tm_session_factory(info={"request": request})
        else:  # a host's own transaction manager (tm.manager_hook): register per request
            from .storage import get_tm_session

            session = get_tm_session(self._session_factory, tm, request)
        return dialect, SessionSource(session)

    def registration_store(self) -> RegistrationStore:
        """The SQL :class:`~pyramid_attesto.core.registration.RegistrationStore`
        (``attesto.registration_store = sqlalchemy``), in the current request's transaction."""
        if self._memory is not None:
            raise ConfigurationError(
                "attesto.registration_store = sqlalchemy needs a database: attesto.sqlalchemy.url "
                "or attesto.storage = dbsession"
            )
        from .storage import SqlRegistrationStore

        return SqlRegistrationStore(_CurrentRequestSource(self))

    def metadata_document_cache(self) -> MetadataDocumentCache | None:
        """The shared Client ID Metadata Document cache when a database is configured
        (``None`` in ``memory`` mode: the resolver keeps documents in memory)."""
        if self._memory is not None:
            return None
        from .storage import SqlMetadataDocumentCache

        return SqlMetadataDocumentCache(_CurrentRequestSource(self), clock=self._clock)


class _CurrentRequestSource:
    """A :class:`~pyramid_attesto.storage.SqlSource` for stores made at startup: the source
    of the request being served, or one transaction per operation outside requests."""

    __slots__ = ("_factory",)

    def __init__(self, factory: StoreFactory) -> None:
        self._factory = factory

    def begin(self, write: bool) -> AbstractContextManager[Connection]:
        from pyramid.threadlocal import get_current_request

        request = get_current_request()
        if request is not None:
            return self._factory.request_source(request)[1].begin(write)
        engine = self._factory.engine
        if engine is None:
            raise ConfigurationError(
                "attesto.storage = dbsession: registered clients and metadata documents are "
                "read only while a request is served (there is no session outside one)"
            )
        begun: AbstractContextManager[Connection] = engine.begin()
        return begun


def make_store_factory(settings: AttestoSettings, clock: Clock) -> StoreFactory:
    """The factory ``attesto.storage`` (and ``attesto.sqlalchemy.url``) ask for."""
    mode = settings.storage or ("sqlalchemy" if settings.sqlalchemy_url else "memory")
    return StoreFactory(mode, clock, settings)
