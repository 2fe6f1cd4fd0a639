"""pytest_attesto: fixtures that let a host app test its attesto-protected routes.

Registered through the ``pytest11`` entry point; see :mod:`pytest_attesto.plugin`.
"""
