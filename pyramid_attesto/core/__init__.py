"""The OAuth 2.x / OpenID Connect protocol, free of any web framework or database.

Nothing under ``pyramid_attesto.core`` imports pyramid, webob, zope, transaction or
sqlalchemy (``tests/core/test_purity.py`` enforces it). The Pyramid wiring parses a request
into core values, calls core, and renders what core returns or raises.
"""
