"""attesto's own views: thin wiring that parses a request, calls core and renders the result.

Every view is ``NO_PERMISSION_REQUIRED`` and ``require_csrf=False`` (DESIGN.md D3): the
protocol endpoints authenticate their clients themselves, so a host's default permission or
CSRF default cannot lock them out.
"""
