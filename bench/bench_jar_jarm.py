"""Request objects (RFC 9101) and JARM responses, against joserfc's own verify/sign of the same
token (DESIGN.md D22).

- ``RequestObjectVerifier.verify``: an ES256 request object of a client with an inline JWK
  Set, under the generic and the FAPI 2.0 Message Signing policies; floor:
  ``joserfc.jws.deserialize_compact`` of the same object with the imported key.
- ``JARMEncoder.encode``: an ES256 JARM response (code and state); floor:
  ``joserfc.jws.serialize_compact`` of the same claims with the same key.
- ``success_response`` in ``query.jwt``: the encoder plus building the redirect URI.
"""

from __future__ import annotations

import json
from typing import Any, cast

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from joserfc import jws
from joserfc.jwk import ECKey

from bench._harness import Row, measure, print_rows
from pyramid_attesto.core.authorization import ResponseTarget
from pyramid_attesto.core.clients import Client
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_encode
from pyramid_attesto.core.jarm import JARMEncoder, success_response
from pyramid_attesto.core.keys import StaticKeystore, generate_key, private_signer
from pyramid_attesto.core.request_objects import RequestObjectPolicy, RequestObjectVerifier

AS = "https://as.example"
NUMBER = 1000


def _request_object(key: ec.EllipticCurvePrivateKey, now: int) -> str:
    header = {"alg": "ES256", "typ": "oauth-authz-req+jwt", "kid": "k"}
    claims = {
        "iss": "app",
        "aud": AS,
        "client_id": "app",
        "response_type": "code",
        "redirect_uri": "https://app.example/cb",
        "scope": "openid read",
        "state": "af0ifjsldkj",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "nbf": now - 30,
        "exp": now + 300,
    }
    signing_input = (
        f"{b64url_encode(json.dumps(header).encode())}.{b64url_encode(json.dumps(claims).encode())}"
    )
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{b64url_encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _request_object_rows() -> list[Row]:
    clock = FrozenClock()
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = ECKey.import_key(key.public_key()).as_dict()
    jwk["kid"] = "k"
    client = Client(
        client_id="app",
        token_endpoint_auth_method="private_key_jwt",
        redirect_uris=("https://app.example/cb",),
        jwks={"keys": [jwk]},
    )
    value = _request_object(key, int(clock.now()))
    imported = ECKey.import_key(jwk)
    floor = measure(lambda: jws.deserialize_compact(value, imported), number=NUMBER)
    rows = []
    for name, policy in (
        ("generic", RequestObjectPolicy.generic()),
        ("fapi2_message_signing", RequestObjectPolicy.fapi2_message_signing()),
    ):
        verify = RequestObjectVerifier(policy, issuer=AS, clock=clock).verify
        micros = measure(lambda: verify(value, client), number=NUMBER)  # noqa: B023 - called now
        rows.append(Row(f"request object verify (ES256, {name})", micros, floor))
    return rows


def _jarm_rows() -> list[Row]:
    clock = FrozenClock()
    signer_key = generate_key("ES256")
    keystore = StaticKeystore([private_signer(signer_key)])
    encoder = JARMEncoder(keystore, issuer=AS, clock=clock)
    target = ResponseTarget(AS, "app", "https://app.example/cb", "query.jwt", "af0ifjsldkj")
    parameters = {"code": "SplxlOBeZQQYbYS6WxSbIA", "state": "af0ifjsldkj", "iss": AS}
    claims = {"iss": AS, "aud": "app", "exp": int(clock.now()) + 300, **parameters}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    header = {"alg": "ES256", "typ": "JWT", "kid": keystore.signer("ES256").public_jwk["kid"]}
    joserfc_key = ECKey.import_key(cast("dict[str, Any]", signer_key))
    floor = measure(lambda: jws.serialize_compact(header, payload, joserfc_key), number=NUMBER)
    encode = measure(lambda: encoder.encode(target, parameters), number=NUMBER)
    respond = measure(
        lambda: success_response(target, "SplxlOBeZQQYbYS6WxSbIA", jarm=encoder), number=NUMBER
    )
    return [
        Row("JARM encode (ES256, code + state)", encode, floor),
        Row("success_response query.jwt (ES256)", respond, floor),
    ]


def main() -> None:
    print_rows(
        "JAR and JARM (vs joserfc verifying / signing the same token)",
        [*_request_object_rows(), *_jarm_rows()],
    )
