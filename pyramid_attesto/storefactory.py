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
"""

from __future__ import annotations

from typing import Any

from .core.clock import Clock
from .core.errors import ConfigurationError
from .core.stores import Stores
from .settings import AttestoSettings

__all__ = ["LazyStores", "StoreFactory", "make_store_factory"]

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
        if self.mode == "dbsession":
            session = getattr(request, "dbsession", None)
            if session is None:
                raise ConfigurationError(
                    "attesto.storage = dbsession needs the host's request.dbsession"
                )
            stores: Stores = self._storage(session.get_bind().dialect.name).for_session(session)
            return stores
        storage = self._storage(self._engine.dialect.name)
        tm = getattr(request, "tm", None)
        if tm is None:
            return storage.for_engine(self._engine)  # type: ignore[no-any-return]
        if tm is self._shared_tm:
            session = self._tm_session_factory(info={"request": request})
        else:  # a host's own transaction manager (tm.manager_hook): register per request
            from .storage import get_tm_session

            session = get_tm_session(self._session_factory, tm, request)
        return storage.for_session(session)  # type: ignore[no-any-return]


def make_store_factory(settings: AttestoSettings, clock: Clock) -> StoreFactory:
    """The factory ``attesto.storage`` (and ``attesto.sqlalchemy.url``) ask for."""
    mode = settings.storage or ("sqlalchemy" if settings.sqlalchemy_url else "memory")
    return StoreFactory(mode, clock, settings)
