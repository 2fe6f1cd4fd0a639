"""Store implementations behind the Protocols of :mod:`pyramid_attesto.core.stores`:
memory (one process) and SQLAlchemy (PostgreSQL for clusters, SQLite embedded)."""
