"""Client authentication matrix: RFC 6749 §2.3 and §5.2, RFC 7521 §4.2, RFC 7523 §2.2 and §3,
OpenID Connect Core §9, RFC 8705 §2, DESIGN.md D6 and D7.

Client assertions are built here with ``cryptography`` and ``hmac`` directly (the JWS signed by
hand), never through joserfc or our own code, so a bug shared by builder and verifier cannot
hide.
"""

from __future__ import annotations

import base64
import doctest
import hashlib
import hmac
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from pyramid_attesto.core import client_auth, clients
from pyramid_attesto.core.client_auth import (
    CLIENT_ASSERTION_TYPE,
    AuthenticatedClient,
    ClientAuthPolicy,
    ClientAuthRequest,
    KeySetCache,
    authenticate_client,
    parse_basic_credentials,
)
from pyramid_attesto.core.clients import Client, ClientStore, MTLSMethod
from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.errors import (
    ConfigurationError,
    InvalidClient,
    InvalidRequest,
    OAuthError,
    is_valid_description,
)
from pyramid_attesto.core.secret import constant_time_equals, hash_secret, sha256_b64url
from pyramid_attesto.core.stores import ReplayStore

FIXTURES = Path(__file__).parent.parent / "fixtures"
ISSUER = "https://as.example.com"
TOKEN_URL = "https://as.example.com/token"
PAR_URL = "https://as.example.com/par"
NOW = 1_700_000_000

# -- keys and hand-made JWS ------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class Key:
    """A private key that signs JWS by hand, and its public JWK."""

    kind: str  # "ec", "rsa", "ed25519"
    private: Any
    kid: str

    def jwk(self, **extra: Any) -> dict[str, Any]:
        public = self.private.public_key()
        if self.kind == "ec":
            numbers = public.public_numbers()
            size = (public.curve.key_size + 7) // 8
            jwk = {
                "kty": "EC",
                "crv": {256: "P-256", 384: "P-384"}[public.curve.key_size],
                "x": _b64(numbers.x.to_bytes(size, "big")),
                "y": _b64(numbers.y.to_bytes(size, "big")),
            }
        elif self.kind == "rsa":
            numbers = public.public_numbers()
            jwk = {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e)}
        else:
            raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
        return {**jwk, "kid": self.kid, **extra}

    def sign(self, alg: str, data: bytes) -> bytes:
        if alg.startswith("ES"):
            bits = int(alg[2:])
            digest = {256: hashes.SHA256(), 384: hashes.SHA384()}[bits]
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(digest)))
            size = (self.private.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        if alg.startswith(("RS", "PS")):
            digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[
                alg[2:]
            ]
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg.startswith("RS")
                else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            )
            signature: bytes = self.private.sign(data, pad, digest)
            return signature
        assert alg in ("EdDSA", "Ed25519")
        raw: bytes = self.private.sign(data)
        return raw


@cache
def ec_key(kid: str = "ec-1") -> Key:
    return Key("ec", ec.generate_private_key(ec.SECP256R1()), kid)


@cache
def rsa_key(kid: str = "rsa-1", bits: int = 2048) -> Key:
    return Key("rsa", rsa.generate_private_key(public_exponent=65537, key_size=bits), kid)


@cache
def ed_key(kid: str = "ed-1") -> Key:
    return Key("ed25519", ed25519.Ed25519PrivateKey.generate(), kid)


def compact(header: Mapping[str, Any], payload: Mapping[str, Any] | bytes, sign: Any) -> str:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(body)}".encode()
    return f"{signing_input.decode()}.{_b64(sign(signing_input))}"


_jti = itertools.count()


def claims(client_id: str = "pkjwt", **overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": f"jti-{next(_jti)}",
    }
    values.update(overrides)
    return {name: value for name, value in values.items() if value is not DROP}


DROP: Any = object()


def signed(
    key: Key | None = None,
    alg: str = "ES256",
    payload: Mapping[str, Any] | bytes | None = None,
    **header: Any,
) -> str:
    key = key or ec_key()
    head = {"alg": alg, "kid": key.kid, **header}
    head = {name: value for name, value in head.items() if value is not DROP}
    return compact(head, claims() if payload is None else payload, lambda d: key.sign(alg, d))


def hs256(secret: bytes, payload: Mapping[str, Any], **header: Any) -> str:
    return compact(
        {"alg": "HS256", **header},
        payload,
        lambda d: hmac.new(secret, d, hashlib.sha256).digest(),
    )


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


# -- the host side ---------------------------------------------------------------------------

SHARED_SECRET = "0123456789abcdef0123456789abcdef-shared"
SPECIAL_ID = "my client:1"
SPECIAL_SECRET = "p:a+s%s w/=?&"


class Store:
    """A ClientStore that keeps only hashes of the secrets (rule 4)."""

    def __init__(self, *extra: Client) -> None:
        self.clients = {client.client_id: client for client in (*CLIENTS, *extra)}
        self.hashes = {
            "basic": hash_secret("basic-secret"),
            "post": hash_secret("post-secret"),
            SPECIAL_ID: hash_secret(SPECIAL_SECRET),
        }
        self.jwt_secrets = {"secretjwt": SHARED_SECRET}

    def load_client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id)

    def verify_client_secret(self, client: Client, secret: str) -> bool:
        stored = self.hashes.get(client.client_id)
        return stored is not None and constant_time_equals(stored, hash_secret(secret))

    def client_secret_for_jwt(self, client: Client) -> str | None:
        return self.jwt_secrets.get(client.client_id)


class Replays:
    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def check_and_record(self, key: str, expires_at: int) -> bool:
        if key in self.seen:
            return False
        self.seen[key] = expires_at
        return True


class Matcher:
    """Stands in for core.mtls: the certificate matches when it is the expected object."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, MTLSMethod, object]] = []

    def __call__(
        self,
        client: Client,
        certificate: object,
        method: MTLSMethod,
        jwks: Mapping[str, Any] | None,
    ) -> bool:
        self.calls.append((client.client_id, method, jwks))
        return certificate == f"cert-of-{client.client_id}"


class RotatingJWKS:
    """A jwks_uri provider: serves an old set until asked to refresh."""

    def __init__(self, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
        self.old, self.new, self.refreshes = old, new, 0

    def __call__(self, client: Client, *, refresh: bool = False) -> Mapping[str, Any] | None:
        if client.jwks_uri is None:
            return client.jwks
        if refresh:
            self.refreshes += 1
            return self.new
        return self.old


def _jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys)}


CLIENTS = (
    Client(client_id="basic", token_endpoint_auth_method="client_secret_basic"),
    Client(client_id=SPECIAL_ID, token_endpoint_auth_method="client_secret_basic"),
    Client(client_id="post", token_endpoint_auth_method="client_secret_post"),
    Client(
        client_id="pkjwt",
        token_endpoint_auth_method="private_key_jwt",
        jwks=_jwks(ec_key().jwk(), rsa_key().jwk(), ed_key().jwk()),
    ),
    Client(
        client_id="ps-only",
        token_endpoint_auth_method="private_key_jwt",
        token_endpoint_auth_signing_alg="PS256",
        jwks=_jwks(rsa_key().jwk()),
    ),
    Client(
        client_id="remote",
        token_endpoint_auth_method="private_key_jwt",
        jwks_uri="https://client.example/jwks",
    ),
    Client(
        client_id="weak-rsa",
        token_endpoint_auth_method="private_key_jwt",
        jwks=_jwks(rsa_key("rsa-1024", 1024).jwk()),
    ),
    Client(client_id="secretjwt", token_endpoint_auth_method="client_secret_jwt"),
    Client(client_id="no-shared-secret", token_endpoint_auth_method="client_secret_jwt"),
    Client(
        client_id="public",
        token_endpoint_auth_method="none",
        application_type="native",
        redirect_uris=["http://127.0.0.1/cb"],
    ),
    Client(
        client_id="tls",
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_subject_dn="CN=tls,O=Example",
    ),
    Client(
        client_id="selfsigned",
        token_endpoint_auth_method="self_signed_tls_client_auth",
        jwks=_jwks(ec_key().jwk()),
    ),
)

MATCHER = Matcher()
POLICY = ClientAuthPolicy()
ALL_METHODS = ClientAuthPolicy(
    methods=clients.AUTH_METHODS,
    certificate_matcher=MATCHER,
    assertion_algorithms=frozenset({"ES256", "PS256", "RS256", "EdDSA"}),
)
COMPAT = ClientAuthPolicy(accept_endpoint_audience=True)
FAPI = ClientAuthPolicy.fapi_profile(certificate_matcher=MATCHER)


class Env:
    def __init__(self) -> None:
        self.store = Store()
        self.replays = Replays()
        self.clock = FrozenClock(NOW)

    def auth(
        self, request: ClientAuthRequest, policy: ClientAuthPolicy = ALL_METHODS
    ) -> AuthenticatedClient:
        return authenticate_client(
            request, store=self.store, replay_store=self.replays, policy=policy, clock=self.clock
        )

    def fail(
        self, request: ClientAuthRequest, policy: ClientAuthPolicy = ALL_METHODS
    ) -> InvalidClient:
        with pytest.raises(InvalidClient) as info:
            self.auth(request, policy)
        error = info.value
        assert error.error == "invalid_client"
        assert error.description is None or is_valid_description(error.description)
        return error


@pytest.fixture
def env() -> Env:
    return Env()


def req(
    form: Mapping[str, str | list[str]] | None = None,
    authorization: str | None = None,
    *,
    endpoint: str = TOKEN_URL,
    cert: object | None = None,
) -> ClientAuthRequest:
    values = {"grant_type": "client_credentials", **(form or {})}
    return ClientAuthRequest(
        form={name: [v] if isinstance(v, str) else v for name, v in values.items()},
        issuer=ISSUER,
        endpoint_url=endpoint,
        token_endpoint_url=TOKEN_URL,
        authorization=authorization,
        client_certificate=cert,
    )


def jwt_form(assertion: str, **extra: str) -> dict[str, str]:
    return {"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": assertion, **extra}


# -- client_secret_basic (RFC 6749 §2.3.1) ---------------------------------------------------


def _vectors() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / "basic_credentials.json").read_text("utf-8"))
    return loaded


@pytest.mark.parametrize("vector", _vectors()["valid"], ids=lambda v: v["source"])
def test_basic_credentials_vectors_rfc6749_2_3_1(vector: dict[str, str]) -> None:
    assert parse_basic_credentials(vector["authorization"]) == (
        vector["client_id"],
        vector["client_secret"],
    )


@pytest.mark.parametrize("vector", _vectors()["invalid"], ids=lambda v: v["source"])
def test_malformed_basic_is_invalid_client_401_rfc6749_2_3_1(
    env: Env, vector: dict[str, str]
) -> None:
    """Malformed Basic credentials: 401 with a Basic challenge (RFC 6749 §5.2)."""
    with pytest.raises(ValueError, match=vector["reason"]):
        parse_basic_credentials(vector["authorization"])
    error = env.fail(req(authorization=vector["authorization"]))
    assert error.reason == vector["reason"]
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith("Basic ")


def test_client_secret_basic_succeeds(env: Env) -> None:
    result = env.auth(req(authorization=basic("basic", "basic-secret")))
    assert result == AuthenticatedClient(env.store.clients["basic"], "client_secret_basic")
    assert result.client_id == "basic"


def test_client_secret_basic_decodes_form_urlencoded_specials_rfc6749_2_3_1(env: Env) -> None:
    """A client id with ``:`` and space and a secret with ``:``, ``+``, ``%`` travel
    form-urlencoded inside Basic (RFC 6749 §2.3.1)."""
    result = env.auth(req(authorization=basic(SPECIAL_ID, SPECIAL_SECRET)))
    assert result.client_id == SPECIAL_ID


def test_unencoded_plus_in_basic_secret_is_a_space_rfc6749_2_3_1(env: Env) -> None:
    """Without form-encoding, ``+`` reads as a space, so the secret is wrong (§2.3.1)."""
    raw = base64.b64encode(f"{quote_plus(SPECIAL_ID)}:{SPECIAL_SECRET}".encode()).decode()
    assert env.fail(req(authorization=f"Basic {raw}")).reason in ("wrong_secret", "not_utf8")


def test_basic_with_the_same_client_id_in_the_body_is_fine(env: Env) -> None:
    result = env.auth(req({"client_id": "basic"}, basic("basic", "basic-secret")))
    assert result.method == "client_secret_basic"


def test_wrong_secret_basic_answers_401_with_basic_challenge_rfc6749_5_2(env: Env) -> None:
    """RFC 6749 §5.2: the Authorization-header case MUST be 401 with a challenge."""
    error = env.fail(req(authorization=basic("basic", "wrong")))
    assert (error.reason, error.status) == ("wrong_secret", 401)
    assert error.headers["WWW-Authenticate"] == 'Basic realm="oauth", charset="UTF-8"'
    assert error.to_dict() == {
        "error": "invalid_client",
        "error_description": "client authentication failed",
    }


def test_unknown_client_basic_rfc6749_5_2(env: Env) -> None:
    error = env.fail(req(authorization=basic("nobody", "basic-secret")))
    assert (error.reason, error.status) == ("unknown_client", 401)
    assert "WWW-Authenticate" in error.headers


def test_empty_secret_in_basic_is_refused_rfc6749_2_3_1(env: Env) -> None:
    assert env.fail(req(authorization=basic("basic", ""))).reason == "malformed_secret"


def test_non_vschar_secret_is_refused_rfc6749_appendix_a_2(env: Env) -> None:
    """client-secret is *VSCHAR (RFC 6749 Appendix A.2)."""
    assert env.fail(req(authorization=basic("basic", "s\u00e9cret"))).reason == "malformed_secret"
    assert env.fail(req({"client_id": "post", "client_secret": "a\x00"})).reason == (
        "malformed_secret"
    )


def test_non_vschar_client_id_is_refused_rfc6749_appendix_a_1(env: Env) -> None:
    assert env.fail(req(authorization=basic("bas\nic", "x"))).reason == "malformed_client_id"
    assert env.fail(req({"client_id": "x" * 2049})).reason == "malformed_client_id"


def test_oversized_authorization_header_is_refused(env: Env) -> None:
    assert env.fail(req(authorization="Basic " + "A" * 5000)).reason == "too_long"


def test_case_insensitive_store_lookup_does_not_authenticate_another_id(env: Env) -> None:
    """The loaded client's id must be the presented one (a case-folding lookup is a bug)."""

    class Folding(Store):
        def load_client(self, client_id: str) -> Client | None:
            return self.clients.get(client_id.lower())

    env.store = Folding()
    assert env.fail(req(authorization=basic("BASIC", "basic-secret"))).reason == "unknown_client"


# -- client_secret_post (RFC 6749 §2.3.1) ----------------------------------------------------


def test_client_secret_post_succeeds(env: Env) -> None:
    result = env.auth(req({"client_id": "post", "client_secret": "post-secret"}))
    assert (result.client_id, result.method) == ("post", "client_secret_post")


def test_wrong_secret_post_rfc6749_5_2(env: Env) -> None:
    error = env.fail(req({"client_id": "post", "client_secret": "nope"}))
    assert (error.reason, error.status) == ("wrong_secret", 401)


def test_unknown_client_post_rfc6749_5_2(env: Env) -> None:
    assert env.fail(req({"client_id": "ghost", "client_secret": "x"})).reason == "unknown_client"


def test_client_secret_without_client_id_rfc6749_2_3_1(env: Env) -> None:
    assert env.fail(req({"client_secret": "post-secret"})).reason == "missing_client_id"


def test_empty_parameters_count_as_omitted_rfc6749_3_2(env: Env) -> None:
    """RFC 6749 §3.2: a parameter without a value is treated as omitted."""
    result = env.auth(req({"client_secret": ""}, basic("basic", "basic-secret")))
    assert result.method == "client_secret_basic"


def test_repeated_authentication_parameter_is_invalid_request_rfc6749_3_2(env: Env) -> None:
    """RFC 6749 §3.2: request parameters MUST NOT be included more than once."""
    for name in ("client_id", "client_secret", "client_assertion", "client_assertion_type"):
        with pytest.raises(InvalidRequest) as info:
            env.auth(req({"client_id": "post", "client_secret": "post-secret", name: ["a", "b"]}))
        assert info.value.reason == "repeated_parameter"


def test_form_values_must_be_sequences(env: Env) -> None:
    request = ClientAuthRequest(
        form={"client_id": "post"},  # type: ignore[dict-item]
        issuer=ISSUER,
        endpoint_url=TOKEN_URL,
    )
    with pytest.raises(TypeError):
        env.auth(request)


# -- one method per request, and only the registered one (RFC 6749 §2.3) --------------------


@pytest.mark.parametrize(
    ("form", "authorization"),
    [
        ({"client_secret": "basic-secret"}, basic("basic", "basic-secret")),
        (jwt_form("a.b.c"), basic("basic", "basic-secret")),
        ({**jwt_form("a.b.c"), "client_id": "post", "client_secret": "post-secret"}, None),
        ({"client_assertion_type": CLIENT_ASSERTION_TYPE, "client_secret": "x"}, None),
        ({"client_assertion": "a.b.c"}, basic("basic", "basic-secret")),
    ],
    ids=["basic+post", "basic+assertion", "assertion+post", "assertion_type+post", "basic+jwt"],
)
def test_two_methods_at_once_are_refused_rfc6749_2_3(
    env: Env, form: dict[str, str], authorization: str | None
) -> None:
    """RFC 6749 §2.3: the client MUST NOT use more than one authentication method."""
    assert env.fail(req(form, authorization)).reason == "multiple_methods"


def test_confidential_client_cannot_downgrade_to_none_rfc6749_2_3(env: Env) -> None:
    """A confidential client sending only its client_id is not authenticated."""
    for client_id in ("basic", "post", "pkjwt", "secretjwt"):
        assert env.fail(req({"client_id": client_id})).reason == "method_not_registered"


def test_registered_method_is_the_only_one_accepted_rfc7591_2(env: Env) -> None:
    """RFC 7591 §2 token_endpoint_auth_method: a basic client cannot use post and back."""
    assert (
        env.fail(req({"client_id": "basic", "client_secret": "basic-secret"})).reason
        == "method_not_registered"
    )
    assert env.fail(req(authorization=basic("post", "post-secret"))).reason == (
        "method_not_registered"
    )
    assertion = signed(payload=claims("basic"))
    assert env.fail(req(jwt_form(assertion))).reason == "method_not_registered"


def test_public_client_sending_a_secret_is_refused_rfc6749_2_3(env: Env) -> None:
    assert env.fail(req({"client_id": "public", "client_secret": "x"})).reason == (
        "method_not_registered"
    )


def test_no_credentials_at_all_rfc6749_5_2(env: Env) -> None:
    assert env.fail(req()).reason == "no_credentials"


def test_body_client_id_differing_from_basic_is_refused_rfc6749_2_3(env: Env) -> None:
    error = env.fail(req({"client_id": "post"}, basic("basic", "basic-secret")))
    assert error.reason == "client_id_mismatch"


def test_method_disabled_by_policy_is_refused(env: Env) -> None:
    policy = ClientAuthPolicy(methods=frozenset({"client_secret_basic"}))
    error = env.fail(req({"client_id": "post", "client_secret": "post-secret"}), policy)
    assert error.reason == "method_disabled"


# -- none (public clients) -------------------------------------------------------------------


def test_public_client_authenticates_with_client_id_only(env: Env) -> None:
    result = env.auth(req({"client_id": "public"}))
    assert (result.method, result.client.public) == ("none", True)


def test_unknown_public_client_rfc6749_5_2(env: Env) -> None:
    assert env.fail(req({"client_id": "ghost"})).reason == "unknown_client"


# -- private_key_jwt (RFC 7523 §2.2, §3) -----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "alg"),
    [(ec_key(), "ES256"), (rsa_key(), "PS256"), (rsa_key(), "RS256"), (ed_key(), "EdDSA")],
    ids=["ES256", "PS256", "RS256", "EdDSA"],
)
def test_private_key_jwt_succeeds_with_each_default_algorithm_d7(
    env: Env, key: Key, alg: str
) -> None:
    result = env.auth(req(jwt_form(signed(key, alg))))
    assert (result.client_id, result.method) == ("pkjwt", "private_key_jwt")


def test_private_key_jwt_with_client_id_and_array_audience_d7(env: Env) -> None:
    assertion = signed(payload=claims(aud=[ISSUER]))
    result = env.auth(req(jwt_form(assertion, client_id="pkjwt")))
    assert result.client_id == "pkjwt"


def test_private_key_jwt_without_kid_tries_the_matching_keys(env: Env) -> None:
    assert env.auth(req(jwt_form(signed(rsa_key(), "RS256", kid=DROP)))).client_id == "pkjwt"


def test_explicit_typ_is_accepted_rfc7523bis(env: Env) -> None:
    for typ in ("JWT", "client-authentication+jwt", "application/client-authentication+jwt"):
        assert env.auth(req(jwt_form(signed(typ=typ)))).client_id == "pkjwt"


def test_assertion_replay_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 item 7: the AS may ensure a JWT is not replayed; we do, by jti."""
    assertion = signed()
    env.auth(req(jwt_form(assertion)))
    assert env.fail(req(jwt_form(assertion))).reason == "replay"


def test_same_jti_in_a_fresh_assertion_is_a_replay_rfc7523_3(env: Env) -> None:
    env.auth(req(jwt_form(signed(payload=claims(jti="fixed")))))
    error = env.fail(req(jwt_form(signed(payload=claims(jti="fixed", iat=NOW + 1)))))
    assert error.reason == "replay"


def test_replay_key_is_sha256_of_client_and_jti_and_expires_after_exp(env: Env) -> None:
    env.auth(req(jwt_form(signed(payload=claims(jti="abc", exp=NOW + 100)))))
    assert env.replays.seen == {sha256_b64url("pkjwt:abc"): NOW + 100 + POLICY.leeway}


def test_same_jti_from_two_clients_is_not_a_replay(env: Env) -> None:
    env.auth(req(jwt_form(signed(payload=claims(jti="shared")))))
    other = signed(rsa_key(), "PS256", payload=claims("ps-only", jti="shared"))
    assert env.auth(req(jwt_form(other))).client_id == "ps-only"


def test_a_failed_assertion_does_not_burn_its_jti(env: Env) -> None:
    env.fail(req(jwt_form(signed(payload=claims(jti="j", aud="https://evil.example")))))
    assert env.replays.seen == {}


@pytest.mark.parametrize(
    "aud",
    ["https://evil.example", ISSUER + "/", [ISSUER, TOKEN_URL], [], ["https://evil.example"], 7],
    ids=["other", "trailing-slash", "two-element-array", "empty-array", "other-array", "number"],
)
def test_wrong_audience_is_refused_rfc7523_3_d7(env: Env, aud: Any) -> None:
    """RFC 7523 §3 item 3 and D7: ``aud`` is the issuer, as a string or a one-element array."""
    assertion = signed(payload=claims(aud=aud))
    assert env.fail(req(jwt_form(assertion)), COMPAT).reason == "wrong_aud"


def test_missing_audience_is_refused_rfc7523_3(env: Env) -> None:
    assert env.fail(req(jwt_form(signed(payload=claims(aud=DROP))))).reason == "wrong_aud"


def test_token_endpoint_audience_needs_the_compat_flag_rfc7523bis_d7(env: Env) -> None:
    """D7 / draft-ietf-oauth-rfc7523bis: the endpoint URL is accepted only in compat mode."""
    assert env.fail(req(jwt_form(signed(payload=claims(aud=TOKEN_URL))))).reason == "wrong_aud"
    assert env.auth(req(jwt_form(signed(payload=claims(aud=TOKEN_URL)))), COMPAT).client_id
    assert env.auth(req(jwt_form(signed(payload=claims(aud=[TOKEN_URL])))), COMPAT).client_id


def test_par_endpoint_audience_in_compat_mode_rfc9126_2(env: Env) -> None:
    """RFC 9126 §2: at PAR the issuer, token endpoint or PAR endpoint URL (compat only)."""
    for aud in (ISSUER, TOKEN_URL, PAR_URL):
        request = req(jwt_form(signed(payload=claims(aud=aud))), endpoint=PAR_URL)
        assert env.auth(request, COMPAT).client_id == "pkjwt"
    request = req(jwt_form(signed(payload=claims(aud=PAR_URL))), endpoint=PAR_URL)
    assert env.fail(request, POLICY).reason == "wrong_aud"


def test_expired_assertion_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 item 4: the AS MUST reject a JWT with an expired ``exp``."""
    payload = claims(iat=NOW - 100, exp=NOW - POLICY.leeway)
    assert env.fail(req(jwt_form(signed(payload=payload)))).reason == "expired"


def test_expiry_leeway_rfc7519_4_1_4(env: Env) -> None:
    payload = claims(iat=NOW - 100, exp=NOW - POLICY.leeway + 1)
    assert env.auth(req(jwt_form(signed(payload=payload)))).client_id == "pkjwt"


def test_missing_or_malformed_exp_is_refused_rfc7523_3(env: Env) -> None:
    for exp in (DROP, str(NOW + 60), True, None, 10**400, [NOW + 60]):
        error = env.fail(req(jwt_form(signed(payload=claims(exp=exp)))))
        assert error.reason == "missing_exp"


def test_not_yet_valid_nbf_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 item 5: the JWT MUST NOT be accepted before ``nbf``."""
    payload = claims(nbf=NOW + POLICY.leeway + 1)
    assert env.fail(req(jwt_form(signed(payload=payload)))).reason == "not_yet_valid"
    assert env.auth(req(jwt_form(signed(payload=claims(nbf=NOW + 5))))).client_id == "pkjwt"
    assert env.fail(req(jwt_form(signed(payload=claims(nbf="soon"))))).reason == "malformed_nbf"


def test_iat_in_the_future_is_refused_rfc7523_3(env: Env) -> None:
    payload = claims(iat=NOW + POLICY.leeway + 1, exp=NOW + 120)
    assert env.fail(req(jwt_form(signed(payload=payload)))).reason == "iat_in_future"
    assert env.fail(req(jwt_form(signed(payload=claims(iat="now"))))).reason == "malformed_iat"


def test_lifetime_too_long_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 item 4: the AS MAY limit how far in the future ``exp`` can be."""
    too_long = claims(iat=NOW, exp=NOW + POLICY.max_assertion_lifetime + 1)
    assert env.fail(req(jwt_form(signed(payload=too_long)))).reason == "lifetime_too_long"
    without_iat = claims(iat=DROP, exp=NOW + POLICY.max_assertion_lifetime + 1)
    assert env.fail(req(jwt_form(signed(payload=without_iat)))).reason == "lifetime_too_long"
    old_iat = claims(iat=NOW - 400, exp=NOW + 10)
    assert env.fail(req(jwt_form(signed(payload=old_iat)))).reason == "lifetime_too_long"
    just_right = claims(iat=NOW, exp=NOW + POLICY.max_assertion_lifetime)
    assert env.auth(req(jwt_form(signed(payload=just_right)))).client_id == "pkjwt"


def test_missing_jti_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 item 7 makes ``jti`` optional; single use needs it, so we require it."""
    for jti in (DROP, "", 42, "x" * 257, "\ud800", "\u00e9" * 200, "a\nb"):
        assert env.fail(req(jwt_form(signed(payload=claims(jti=jti))))).reason == "missing_jti"


def test_iss_differing_from_sub_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 items 1-2 and §2.2: ``iss`` and ``sub`` are both the client_id."""
    assertion = signed(payload=claims(iss="ps-only"))
    assert env.fail(req(jwt_form(assertion))).reason == "iss_sub_mismatch"
    for missing in ("iss", "sub"):
        error = env.fail(req(jwt_form(signed(payload=claims(**{missing: DROP})))))
        assert error.reason == "missing_iss_or_sub"


def test_body_client_id_differing_from_assertion_is_refused_rfc7521_4_2(env: Env) -> None:
    error = env.fail(req(jwt_form(signed(), client_id="ps-only")))
    assert error.reason == "client_id_mismatch"


def test_unknown_client_assertion_rfc7523_3(env: Env) -> None:
    assertion = signed(payload=claims("ghost"))
    assert env.fail(req(jwt_form(assertion))).reason == "unknown_client"


def test_hs256_with_the_public_key_as_secret_is_refused_rfc8725_2_1(env: Env) -> None:
    """Key confusion (RFC 8725 §2.1): HS256 over a private_key_jwt client's public key."""
    public_pem = (
        rsa_key()
        .private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assertion = hs256(public_pem, claims(), kid=rsa_key().kid)
    assert env.fail(req(jwt_form(assertion))).reason == "alg_not_allowed"
    jwk_json = json.dumps(rsa_key().jwk()).encode()
    assert env.fail(req(jwt_form(hs256(jwk_json, claims())))).reason == "alg_not_allowed"


def test_alg_none_is_refused_rfc8725_3_1(env: Env) -> None:
    head = _b64(json.dumps({"alg": "none"}).encode())
    body = _b64(json.dumps(claims()).encode())
    assert env.fail(req(jwt_form(f"{head}.{body}."))).reason == "malformed"
    assert env.fail(req(jwt_form(f"{head}.{body}.AAAA"))).reason == "alg_not_allowed"


def test_algorithm_outside_the_allow_list_is_refused_d7(env: Env) -> None:
    """D7: assertion algorithms come from the policy's allow-list (RS512 is not on it)."""
    assert env.fail(req(jwt_form(signed(rsa_key(), "RS512")))).reason == "alg_not_allowed"
    assert env.fail(req(jwt_form(signed(alg="ES384")))).reason == "alg_not_allowed"


def test_fapi_profile_refuses_rs256_fapi2_5_4_1(env: Env) -> None:
    """FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA only."""
    assert env.fail(req(jwt_form(signed(rsa_key(), "RS256"))), FAPI).reason == "alg_not_allowed"
    for key, alg in ((rsa_key(), "PS256"), (ec_key(), "ES256"), (ed_key(), "EdDSA")):
        assert env.auth(req(jwt_form(signed(key, alg))), FAPI).method == "private_key_jwt"


def test_registered_signing_alg_narrows_the_allow_list_oidc_registration_2(env: Env) -> None:
    """token_endpoint_auth_signing_alg (OIDC Registration §2): that alg only."""
    rs256 = signed(rsa_key(), "RS256", payload=claims("ps-only"))
    assert env.fail(req(jwt_form(rs256))).reason == "alg_not_allowed"
    ps256 = signed(rsa_key(), "PS256", payload=claims("ps-only"))
    assert env.auth(req(jwt_form(ps256))).client_id == "ps-only"


def test_signature_by_another_key_is_refused_rfc7523_3(env: Env) -> None:
    """RFC 7523 §3 item 9: the signature MUST verify with the client's key."""
    stranger = Key("ec", ec.generate_private_key(ec.SECP256R1()), "ec-1")
    assert env.fail(req(jwt_form(signed(stranger)))).reason == "bad_signature"
    stranger_no_kid = signed(stranger, kid=DROP)
    assert env.fail(req(jwt_form(stranger_no_kid))).reason == "bad_signature"


def test_tampered_payload_is_refused_rfc7515_5_2(env: Env) -> None:
    head, _, sig = signed().split(".")
    body = _b64(json.dumps(claims(sub="pkjwt")).encode())
    assert env.fail(req(jwt_form(f"{head}.{body}.{sig}"))).reason == "bad_signature"


def test_embedded_keys_in_the_header_are_ignored_d6(env: Env) -> None:
    """D6: ``jwk``/``jku``/``x5u``/``x5c`` never supply the key; only the registered JWKS."""
    stranger = Key("ec", ec.generate_private_key(ec.SECP256R1()), "ec-1")
    forged = signed(stranger, jwk=stranger.jwk(), kid=DROP)
    assert env.fail(req(jwt_form(forged))).reason == "bad_signature"
    forged_jku = signed(stranger, jku="https://evil.example/jwks", x5u="https://evil.example/c")
    assert env.fail(req(jwt_form(forged_jku))).reason == "bad_signature"
    honest = signed(jwk=ec_key().jwk(), x5c=["MIIB"], jku="https://evil.example/jwks")
    assert env.auth(req(jwt_form(honest))).client_id == "pkjwt"


def test_wrong_assertion_type_is_refused_rfc7523_2_2(env: Env) -> None:
    """RFC 7523 §2.2: client_assertion_type is the jwt-bearer URN exactly."""
    for value in (
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        CLIENT_ASSERTION_TYPE.upper(),
        CLIENT_ASSERTION_TYPE + " ",
        "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
    ):
        form = {"client_assertion_type": value, "client_assertion": signed()}
        assert env.fail(req(form)).reason == "wrong_assertion_type"
    assert env.fail(req({"client_assertion": signed()})).reason == "wrong_assertion_type"


def test_assertion_type_without_assertion_rfc7521_4_2(env: Env) -> None:
    form = {"client_assertion_type": CLIENT_ASSERTION_TYPE}
    assert env.fail(req(form)).reason == "missing_assertion"


def test_oversized_assertion_is_refused_before_decoding_d6(env: Env) -> None:
    big = signed(payload=claims(padding="x" * 9000))
    assert env.fail(req(jwt_form(big))).reason == "too_large"


@pytest.mark.parametrize(
    "assertion",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJFUzI1NiJ9.e30=.AAAA",
        "eyJhbGciOiJFUzI1NiJ9.!!!!.AAAA",
        "e30.e30.AAAA",
        "bnVsbA.e30.AAAA",
    ],
    ids=["no-dots", "two-parts", "four-parts", "padding", "bad-chars", "no-alg", "null-header"],
)
def test_malformed_assertion_is_refused_rfc7515_7_1(env: Env, assertion: str) -> None:
    assert env.fail(req(jwt_form(assertion))).reason == "malformed"


def test_non_object_or_duplicate_claims_are_refused_rfc7519_4(env: Env) -> None:
    """RFC 7519 §7.2: the claims are a JSON object; §4: duplicate names are rejected."""
    assert env.fail(req(jwt_form(signed(payload=b"[1, 2]")))).reason == "malformed"
    assert env.fail(req(jwt_form(signed(payload=b"not json")))).reason == "malformed"
    dup = b'{"iss":"pkjwt","sub":"pkjwt","sub":"ps-only"}'
    assert env.fail(req(jwt_form(signed(payload=dup)))).reason == "malformed"


def test_deeply_nested_json_is_malformed_not_a_crash_rfc7519_7_2(env: Env) -> None:
    """A payload or header nested beyond the parser's recursion limit is an ``invalid_client``,
    never an escaping RecursionError (a 500)."""
    nested = b"[" * 3000 + b"]" * 3000
    assert env.fail(req(jwt_form(signed(payload=nested)))).reason == "malformed"
    head = _b64(b'{"alg":"ES256","x":' + b"[" * 1500 + b"]" * 1500 + b"}")
    assert env.fail(req(jwt_form(f"{head}.{_b64(b'{}')}.{_b64(b'x' * 64)}"))).reason == (
        "malformed"
    )


def test_crit_header_is_refused_rfc7515_4_1_11(env: Env) -> None:
    assertion = signed(crit=["exp"], exp=1)
    assert env.fail(req(jwt_form(assertion))).reason == "crit"
    # RFC 7797 §6: an unencoded payload; refused with or without its crit entry.
    assert env.fail(req(jwt_form(signed(b64=False, crit=["b64"])))).reason == "crit"
    assert env.fail(req(jwt_form(signed(b64=False)))).reason == "malformed"


def test_other_typ_is_refused_rfc8725_3_11(env: Env) -> None:
    """RFC 8725 §3.11: a DPoP proof or access token is not a client assertion."""
    for typ in ("dpop+jwt", "at+jwt", "logout+jwt", 5):
        assert env.fail(req(jwt_form(signed(typ=typ)))).reason == "wrong_typ"


def test_small_rsa_key_is_refused_rfc7518_3_3(env: Env) -> None:
    """RFC 7518 §3.3: RSA keys of 2048 bits or larger MUST be used."""
    assertion = signed(rsa_key("rsa-1024", 1024), "RS256", payload=claims("weak-rsa"))
    assert env.fail(req(jwt_form(assertion))).reason == "bad_signature"


def test_key_use_enc_or_other_alg_is_not_used_rfc7517_4_2(env: Env) -> None:
    enc_only = Client(
        client_id="enc",
        token_endpoint_auth_method="private_key_jwt",
        jwks=_jwks(ec_key().jwk(use="enc"), rsa_key().jwk(alg="PS256")),
    )
    env.store = Store(enc_only)
    assert env.fail(req(jwt_form(signed(payload=claims("enc"))))).reason == "bad_signature"
    rs = signed(rsa_key(), "RS256", payload=claims("enc"))
    assert env.fail(req(jwt_form(rs))).reason == "bad_signature"
    assert env.auth(req(jwt_form(signed(rsa_key(), "PS256", payload=claims("enc"))))).client_id


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": [{"kty": "EC", "crv": "P-256", "x": "!!"}]},
        {"keys": [{"kty": "RSA", "n": "not base64!", "e": "AQAB"}]},
        {"keys": [{"kty": "RSA", "e": "AQAB"}]},
        {"keys": ["not an object"]},
    ],
    ids=["bad-ec", "bad-rsa-modulus", "no-modulus", "not-an-object"],
)
def test_invalid_client_jwks_is_invalid_client(env: Env, jwks: dict[str, Any]) -> None:
    broken = Client(client_id="broken", token_endpoint_auth_method="private_key_jwt", jwks=jwks)
    env.store = Store(broken)
    error = env.fail(req(jwt_form(signed(payload=claims("broken")))))
    assert error.reason in ("bad_client_jwks", "bad_signature")


def test_key_of_the_wrong_curve_is_skipped_rfc7518_3_4(env: Env) -> None:
    """RFC 7518 §3.4: ES256 is P-256; a P-384 key with the same kid does not verify it."""
    p384 = Key("ec", ec.generate_private_key(ec.SECP384R1()), "ec-1")
    client = Client(
        client_id="p384",
        token_endpoint_auth_method="private_key_jwt",
        jwks=_jwks(p384.jwk(), ec_key("other").jwk()),
    )
    env.store = Store(client)
    assert env.fail(req(jwt_form(signed(payload=claims("p384"))))).reason == "bad_signature"
    assert env.auth(req(jwt_form(signed(ec_key("other"), payload=claims("p384"))))).client_id


def test_non_string_kid_is_refused_rfc7515_4_1_4(env: Env) -> None:
    assert env.fail(req(jwt_form(signed(kid=5)))).reason == "malformed"


def test_jwks_uri_client_without_a_provider_has_no_keys(env: Env) -> None:
    assertion = signed(payload=claims("remote"))
    assert env.fail(req(jwt_form(assertion))).reason == "no_client_keys"


def test_jwks_uri_is_refreshed_once_for_an_unknown_kid(env: Env) -> None:
    provider = RotatingJWKS(_jwks(rsa_key().jwk()), _jwks(ec_key().jwk()))
    policy = ClientAuthPolicy(jwks_provider=provider)
    assert env.auth(req(jwt_form(signed(payload=claims("remote")))), policy).client_id
    assert provider.refreshes == 1
    stranger = Key("ec", ec.generate_private_key(ec.SECP256R1()), "unknown-kid")
    error = env.fail(req(jwt_form(signed(stranger, payload=claims("remote")))), policy)
    assert (error.reason, provider.refreshes) == ("bad_signature", 2)
    # A known kid with a bad signature does not trigger a refetch.
    wrong = Key("ec", ec.generate_private_key(ec.SECP256R1()), "ec-1")
    provider.old = provider.new
    env.fail(req(jwt_form(signed(wrong, payload=claims("remote")))), policy)
    assert provider.refreshes == 2


def test_key_set_cache_is_bounded_and_reused() -> None:
    cache = KeySetCache(size=2)
    first = cache.get(_jwks(ec_key().jwk()))
    assert cache.get(_jwks(ec_key().jwk())) is first
    cache.get(_jwks(rsa_key().jwk()))
    cache.get(_jwks(ed_key().jwk()))
    assert len(cache) == 2
    assert cache.get(_jwks(ec_key().jwk())) is not first
    with pytest.raises(ValueError, match="at least one"):
        KeySetCache(size=0)


# -- client_secret_jwt (OIDC Core §9, RFC 7523 §2.2) -----------------------------------------


def test_client_secret_jwt_succeeds_when_enabled_d7(env: Env) -> None:
    assertion = hs256(SHARED_SECRET.encode(), claims("secretjwt"))
    result = env.auth(req(jwt_form(assertion)))
    assert (result.client_id, result.method) == ("secretjwt", "client_secret_jwt")


def test_client_secret_jwt_is_off_by_default_d7(env: Env) -> None:
    assertion = hs256(SHARED_SECRET.encode(), claims("secretjwt"))
    assert env.fail(req(jwt_form(assertion)), POLICY).reason == "method_disabled"


def test_client_secret_jwt_with_the_wrong_secret_rfc7523_3(env: Env) -> None:
    assertion = hs256(b"another-secret-of-at-least-32-bytes!!", claims("secretjwt"))
    assert env.fail(req(jwt_form(assertion))).reason == "bad_signature"


def test_client_secret_jwt_needs_the_host_callback_d7(env: Env) -> None:
    assertion = hs256(SHARED_SECRET.encode(), claims("no-shared-secret"))
    assert env.fail(req(jwt_form(assertion))).reason == "no_shared_secret"
    env.store.jwt_secrets["no-shared-secret"] = "short"
    assert env.fail(req(jwt_form(assertion))).reason == "no_shared_secret"


def test_client_secret_jwt_client_cannot_use_an_asymmetric_alg_rfc8725_2_1(env: Env) -> None:
    assertion = signed(payload=claims("secretjwt"))
    assert env.fail(req(jwt_form(assertion))).reason == "alg_not_allowed"
    hs512 = compact(
        {"alg": "HS512"},
        claims("secretjwt"),
        lambda d: hmac.new(SHARED_SECRET.encode(), d, hashlib.sha512).digest(),
    )
    assert env.fail(req(jwt_form(hs512))).reason == "alg_not_allowed"


def test_client_secret_jwt_replay_rfc7523_3(env: Env) -> None:
    assertion = hs256(SHARED_SECRET.encode(), claims("secretjwt"))
    env.auth(req(jwt_form(assertion)))
    assert env.fail(req(jwt_form(assertion))).reason == "replay"


# -- tls_client_auth and self_signed_tls_client_auth (RFC 8705 §2) ---------------------------


def test_tls_client_auth_succeeds_through_the_matcher(env: Env) -> None:
    result = env.auth(req({"client_id": "tls"}, cert="cert-of-tls"))
    assert (result.client_id, result.method) == ("tls", "tls_client_auth")
    assert MATCHER.calls[-1] == ("tls", "tls_client_auth", None)


def test_self_signed_tls_client_auth_gets_the_client_jwks(env: Env) -> None:
    result = env.auth(req({"client_id": "selfsigned"}, cert="cert-of-selfsigned"))
    assert result.method == "self_signed_tls_client_auth"
    assert MATCHER.calls[-1] == (
        "selfsigned",
        "self_signed_tls_client_auth",
        _jwks(ec_key().jwk()),
    )


def test_mtls_without_a_certificate_is_refused_rfc8705_2(env: Env) -> None:
    assert env.fail(req({"client_id": "tls"})).reason == "no_certificate"


def test_mtls_with_a_non_matching_certificate_is_refused_rfc8705_2_1(env: Env) -> None:
    error = env.fail(req({"client_id": "tls"}, cert="cert-of-selfsigned"))
    assert error.reason == "wrong_certificate"


def test_mtls_client_cannot_switch_to_a_secret_rfc8705_2(env: Env) -> None:
    error = env.fail(req({"client_id": "tls", "client_secret": "x"}, cert="cert-of-tls"))
    assert error.reason == "method_not_registered"


def test_certificate_alone_does_not_authenticate_a_secret_client_rfc8705_2(env: Env) -> None:
    assert env.fail(req({"client_id": "basic"}, cert="cert-of-basic")).reason == (
        "method_not_registered"
    )


def test_private_key_jwt_with_a_certificate_is_still_private_key_jwt_rfc8705_3(
    env: Env,
) -> None:
    """RFC 8705 §3: mTLS may bind tokens of a client that authenticates otherwise."""
    result = env.auth(req(jwt_form(signed()), cert="cert-of-pkjwt"))
    assert result.method == "private_key_jwt"


# -- status codes and descriptions (RFC 6749 §5.2) -------------------------------------------


def test_body_failures_are_401_with_challenge_when_basic_is_supported_rfc6749_5_2(
    env: Env,
) -> None:
    error = env.fail(req({"client_id": "post", "client_secret": "nope"}), POLICY)
    assert error.status == 401
    assert error.headers["WWW-Authenticate"].startswith("Basic ")


def test_body_failures_are_400_when_no_http_scheme_is_supported_rfc6749_5_2(env: Env) -> None:
    """FAPI enables no HTTP scheme, so there is no challenge to send and 401 would be
    invalid HTTP (RFC 9110 §15.5.2); RFC 6749 §5.2 allows 400."""
    error = env.fail(req(jwt_form(signed(rsa_key(), "RS256"))), FAPI)
    assert (error.status, error.headers) == (400, {})


def test_basic_failures_are_401_even_when_basic_is_disabled_rfc6749_5_2(env: Env) -> None:
    error = env.fail(req(authorization=basic("basic", "basic-secret")), FAPI)
    assert (error.reason, error.status) == ("method_disabled", 401)
    assert "WWW-Authenticate" in error.headers


def test_no_secret_or_assertion_in_any_error_rule_4(env: Env) -> None:
    """DESIGN.md rule 4: no secret in descriptions, messages, reprs or headers."""
    marker = "Sup3rS3cretMarker"
    assertion = signed(payload=claims(jti=marker, aud=marker))
    requests = [
        req(authorization=basic("basic", marker)),
        req(authorization=basic(marker, marker)),
        req({"client_id": "post", "client_secret": marker}),
        req({"client_id": "public", "client_secret": marker}),
        req({"client_secret": marker}, basic("basic", marker)),
        req(jwt_form(assertion)),
        req(jwt_form(hs256(marker.encode() * 3, claims("secretjwt", jti=marker)))),
        req({"client_assertion_type": marker, "client_assertion": assertion}),
    ]
    for request in requests:
        error = env.fail(request)
        rendered = " ".join(
            [str(error), repr(error), json.dumps(error.to_dict()), json.dumps(error.headers)]
        )
        assert marker not in rendered
        assert error.reason is not None
        assert marker not in error.reason


def test_every_failure_is_an_oauth_error_never_a_crash(env: Env) -> None:
    """Bad input gives a protocol error, never an unexpected exception."""
    junk = ["", ".", "..", "a" * 600, "\x00.\x00.\x00", "é.é.é", "e30.e30.e30", "W10.W10.W10"]
    for value in junk:
        with pytest.raises(OAuthError):
            env.auth(req(jwt_form(value)))
        with pytest.raises(OAuthError):
            env.auth(req(authorization=f"Basic {value}"))


# -- the model and the policy ----------------------------------------------------------------


def test_client_model_invariants_rfc7591_2() -> None:
    with pytest.raises(ValueError, match="MUST NOT both"):
        Client(client_id="c", jwks=_jwks(), jwks_uri="https://c.example/jwks")
    with pytest.raises(ValueError, match="needs jwks"):
        Client(client_id="c", token_endpoint_auth_method="private_key_jwt")
    with pytest.raises(ValueError, match="exactly one"):
        Client(client_id="c", token_endpoint_auth_method="tls_client_auth")
    with pytest.raises(ValueError, match="exactly one"):
        Client(
            client_id="c",
            token_endpoint_auth_method="tls_client_auth",
            tls_client_auth_san_dns="c.example",
            tls_client_auth_san_uri="https://c.example",
        )
    with pytest.raises(TypeError, match="sequence of strings"):
        Client(client_id="c", redirect_uris="https://c.example/cb")
    with pytest.raises(ValueError, match="non-empty"):
        Client(client_id="")
    with pytest.raises(ValueError, match="token_endpoint_auth_method"):
        Client(client_id="c", token_endpoint_auth_method="magic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="application_type"):
        Client(client_id="c", application_type="desktop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="JWK Set"):
        Client(client_id="c", jwks={"kty": "EC"})
    client = Client(client_id="c", redirect_uris=["https://c.example/cb"], grant_types=["a"])
    assert client.redirect_uris == ("https://c.example/cb",)
    assert (client.confidential, client.public, client.native) == (True, False, False)
    assert client.token_endpoint_auth_method == "client_secret_basic"
    assert client.response_types == ("code",)


def test_store_protocol_is_satisfied_structurally() -> None:
    store: ClientStore = Store()
    replay: ReplayStore = Replays()
    assert store.load_client("basic") is not None
    assert replay.check_and_record("k", 1)


def test_policy_validation_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown"):
        ClientAuthPolicy(methods=frozenset({"magic"}))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no client authentication"):
        ClientAuthPolicy(methods=frozenset())
    with pytest.raises(ConfigurationError, match="asymmetric"):
        ClientAuthPolicy(assertion_algorithms=frozenset({"HS256"}))
    with pytest.raises(ConfigurationError, match="asymmetric"):
        ClientAuthPolicy(assertion_algorithms=frozenset({"none"}))
    with pytest.raises(ConfigurationError, match="no assertion algorithm"):
        ClientAuthPolicy(assertion_algorithms=frozenset())
    with pytest.raises(ConfigurationError, match="matcher"):
        ClientAuthPolicy(methods=frozenset({"tls_client_auth"}))
    with pytest.raises(ConfigurationError, match="positive"):
        ClientAuthPolicy(max_assertion_lifetime=0)
    with pytest.raises(ConfigurationError, match="issuer only"):
        ClientAuthPolicy.fapi_profile(accept_endpoint_audience=True)
    with pytest.raises(ConfigurationError, match="only private_key_jwt"):
        ClientAuthPolicy.fapi_profile(methods=frozenset({"client_secret_basic"}))
    with pytest.raises(ConfigurationError, match="PS256"):
        ClientAuthPolicy.fapi_profile(assertion_algorithms=frozenset({"RS256"}))


def test_policy_metadata_advertises_exactly_what_is_enforced_rule_6() -> None:
    assert POLICY.token_endpoint_auth_methods_supported == [
        "client_secret_basic",
        "client_secret_post",
        "none",
        "private_key_jwt",
    ]
    assert POLICY.token_endpoint_auth_signing_alg_values_supported == [
        "ES256",
        "EdDSA",
        "PS256",
        "RS256",
    ]
    assert "HS256" in ALL_METHODS.token_endpoint_auth_signing_alg_values_supported
    assert ClientAuthPolicy.fapi_profile().token_endpoint_auth_methods_supported == [
        "private_key_jwt"
    ]
    assert FAPI.token_endpoint_auth_methods_supported == [
        "private_key_jwt",
        "self_signed_tls_client_auth",
        "tls_client_auth",
    ]
    assert FAPI.token_endpoint_auth_signing_alg_values_supported == ["ES256", "EdDSA", "PS256"]


def test_doctests() -> None:
    for module in (client_auth, clients):
        assert doctest.testmod(module, raise_on_error=True).failed == 0
