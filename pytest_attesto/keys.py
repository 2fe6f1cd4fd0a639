"""The test keystore: keys generated once per test session (``attesto_keystore``).

An ES256 key (access tokens), an RS256 key (ID tokens, OpenID Connect Core §15.1) and an
EdDSA key, built with the core's own :func:`~pyramid_attesto.core.keys.generate_key` and
:class:`~pyramid_attesto.core.keys.StaticKeystore`: the app under test signs and verifies with
exactly the keys the fixtures mint with.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from ._quiet import quiet_imports

with quiet_imports():
    from pyramid_attesto.core.keys import Algorithm, StaticKeystore, generate_key, private_signer

__all__ = ["TEST_ALGORITHMS", "TestKeystore"]

TEST_ALGORITHMS: tuple[Algorithm, ...] = ("ES256", "RS256", "EdDSA")


class TestKeystore(StaticKeystore):
    """A :class:`~pyramid_attesto.core.keys.StaticKeystore` of freshly generated keys, one
    active signer per algorithm of ``algorithms``.

    Hand it to the app with ``config.set_attesto_keystore(keystore)``; a resource server that
    reads a key file instead gets one from :meth:`write_jwks`.
    """

    __test__ = False  # not a test class, whatever pytest's python_classes say

    def __init__(self, algorithms: Sequence[Algorithm] = TEST_ALGORITHMS) -> None:
        super().__init__([private_signer(generate_key(alg)) for alg in algorithms], ephemeral=True)

    def write_jwks(self, path: str | PathLike[str]) -> Path:
        """Write the public JWK Set (``attesto.keystore`` of a resource server) to ``path``."""
        target = Path(path)
        target.write_text(json.dumps(self.jwks()))
        return target
