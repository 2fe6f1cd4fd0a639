"""pyramid_attesto: an OAuth 2.x / OpenID Connect authorization server and resource-server
security policy for Pyramid.

``config.include("pyramid_attesto")`` mounts the endpoints and, with ``attesto.resource`` set,
installs the security policy: see :mod:`pyramid_attesto.include`. The protocol itself lives
in :mod:`pyramid_attesto.core`, free of any framework.
"""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "includeme"]

__version__ = "0.1.0.dev0"


def includeme(config: Any) -> None:
    """The Pyramid include: see :mod:`pyramid_attesto.include`."""
    from .include import includeme as include

    include(config)
