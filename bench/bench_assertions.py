"""Token exchange and the jwt-bearer / ID-JAG grant, against joserfc's own verification of the
same token (DESIGN.md D22).

- ``jwt_bearer_grant``: an ES256 ID-JAG with an inline JWK Set, a memory replay store (one
  fresh ``jti`` per call, signed ahead of time) and a dictionary subject resolver; floor:
  ``joserfc.jws.deserialize_compact`` of the same assertion with the imported key.
- ``exchange_token``: an ES256 access token of this server as the subject token; floor:
  :meth:`AccessTokenVerifier.verify`, which the exchange runs first.
"""

from __future__ import annotations

import itertools
import json
import secrets
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from bench._harness import Row, measure, print_rows
from pyramid_attesto.core.binding import PresentedKeys
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_encode
from pyramid_attesto.core.jwt_bearer import (
    GRANT_TYPE,
    ID_JAG_TYP,
    JWTBearerConfig,
    TrustedIssuer,
    VerifiedAssertion,
    jwt_bearer_grant,
)
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.token_exchange import (
    ACCESS_TOKEN_TYPE,
    OwnAccessTokens,
    TokenExchangeConfig,
    exchange_token,
)
from pyramid_attesto.core.token_exchange import GRANT_TYPE as EXCHANGE
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter, AccessTokenVerifier
from pyramid_attesto.storage import MemoryStorage

AS = "https://as.example"
IDP = "https://idp.example"
API = "https://api.example"
NUMBER = 1000


class _Directory:
    def resolve_subject(self, assertion: VerifiedAssertion, client: Client) -> str | None:
        return "alice"


def _id_jags(key: ec.EllipticCurvePrivateKey, now: int, count: int) -> list[str]:
    header = b64url_encode(json.dumps({"alg": "ES256", "typ": ID_JAG_TYP, "kid": "k"}).encode())
    tokens = []
    for _ in range(count):
        claims = {
            "iss": IDP,
            "sub": "00u1",
            "aud": AS,
            "client_id": "agent",
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + 300,
            "resource": API,
            "scope": "read",
        }
        signing_input = f"{header}.{b64url_encode(json.dumps(claims).encode())}"
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = b64url_encode(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
        tokens.append(f"{signing_input}.{signature}")
    return tokens


def _jwt_bearer_rows() -> list[Row]:
    clock = FrozenClock()
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = ECKey.import_key(key.public_key()).as_dict()
    jwk["kid"] = "k"
    config = JWTBearerConfig(
        issuer=AS,
        trusted_issuers={IDP: TrustedIssuer(issuer=IDP, jwks={"keys": [jwk]})},
        subject_resolver=_Directory(),
        resources=frozenset({API}),
    )
    client = Client(client_id="agent", grant_types=(GRANT_TYPE,))
    tokens = _id_jags(key, int(clock.now()), NUMBER * 9)
    forms = itertools.cycle([{"grant_type": [GRANT_TYPE], "assertion": [t]} for t in tokens])
    replay = MemoryStorage(clock).replay
    presented = PresentedKeys()

    def grant() -> object:
        # Each assertion once: measure() makes 7200 calls, there are 9000 assertions.
        return jwt_bearer_grant(
            next(forms), client, config, presented=presented, replay=replay, clock=clock
        )

    imported = ECKey.import_key(jwk)
    first = tokens[0]
    floor = measure(lambda: jws.deserialize_compact(first, imported), number=NUMBER)
    return [
        Row("jwt_bearer_grant (ES256 ID-JAG, inline JWKS)", measure(grant, number=NUMBER), floor)
    ]


def _exchange_rows() -> list[Row]:
    clock = FrozenClock()
    keystore = StaticKeystore([private_signer(generate_key("ES256"))])
    minter = AccessTokenMinter(keystore, issuer=AS, clock=clock)
    subject = minter.mint(
        AccessTokenClaims(subject="alice", client_id="web", audience=API, scopes=("read",))
    ).token
    verifier = AccessTokenVerifier(keystore, issuer=AS, audience=[API], clock=clock)
    config = TokenExchangeConfig(
        issuer=AS, validators={ACCESS_TOKEN_TYPE: OwnAccessTokens(verifier)}
    )
    client = Client(client_id="svc", grant_types=(EXCHANGE,))
    form = {
        "grant_type": [EXCHANGE],
        "subject_token": [subject],
        "subject_token_type": [ACCESS_TOKEN_TYPE],
        "scope": ["read"],
    }
    presented = PresentedKeys()

    def exchange() -> object:
        return exchange_token(form, client, config, presented=presented, clock=clock)

    floor = measure(lambda: verifier.verify(subject), number=NUMBER)
    return [Row("exchange_token (own ES256 access token)", measure(exchange, number=NUMBER), floor)]


def main() -> None:
    print_rows(
        "token exchange and jwt-bearer (vs verifying the input token)",
        [
            *_jwt_bearer_rows(),
            *_exchange_rows(),
        ],
    )
