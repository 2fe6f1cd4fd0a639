"""pyramid_attesto: an OAuth 2.x / OpenID Connect authorization server and resource-server
security policy for Pyramid.

``config.include("pyramid_attesto")`` mounts the endpoints and installs the security policy.
The protocol itself lives in :mod:`pyramid_attesto.core`, free of any framework.
"""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0.dev0"
