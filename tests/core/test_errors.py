from __future__ import annotations

import pytest

from pyramid_attesto.core import errors
from pyramid_attesto.core.errors import (
    ERROR_CLASSES,
    InsufficientScope,
    InvalidClient,
    InvalidGrant,
    InvalidToken,
    OAuthError,
    UseDPoPNonce,
)

# Registered codes and the status each is rendered with by default.
EXPECTED = {
    # RFC 6749 §4.1.2.1 / §5.2
    "invalid_request": 400,
    "invalid_client": 401,
    "invalid_grant": 400,
    "unauthorized_client": 400,
    "unsupported_grant_type": 400,
    "unsupported_response_type": 400,
    "invalid_scope": 400,
    "access_denied": 403,
    "server_error": 500,
    "temporarily_unavailable": 503,
    # RFC 6750 §3.1
    "invalid_token": 401,
    "insufficient_scope": 403,
    # RFC 7009 §2.2.1
    "unsupported_token_type": 400,
    # RFC 8707 §2
    "invalid_target": 400,
    # RFC 9449 §7.1, §8
    "invalid_dpop_proof": 400,
    "use_dpop_nonce": 400,
    # RFC 9470 §3
    "insufficient_user_authentication": 401,
    # RFC 7591 §3.2.2
    "invalid_redirect_uri": 400,
    "invalid_client_metadata": 400,
    "invalid_software_statement": 400,
    "unapproved_software_statement": 400,
    # RFC 9101 §6.3, OIDC Core §3.1.2.6
    "invalid_request_uri": 400,
    "invalid_request_object": 400,
    "request_not_supported": 400,
    "request_uri_not_supported": 400,
    "registration_not_supported": 400,
    "interaction_required": 400,
    "login_required": 400,
    "account_selection_required": 400,
    "consent_required": 400,
}


def test_one_class_per_registered_code() -> None:
    assert set(ERROR_CLASSES) == set(EXPECTED)
    for code, status in EXPECTED.items():
        cls = errors.error_class(code)
        assert cls.error == code
        instance = cls(nonce="n") if cls is UseDPoPNonce else cls()
        assert instance.status == status, code


def test_body_shape_rfc6749_5_2() -> None:
    err = InvalidGrant("the code has expired", reason="expired", uri="https://e.example/x")
    assert err.to_dict() == {
        "error": "invalid_grant",
        "error_description": "the code has expired",
        "error_uri": "https://e.example/x",
    }
    assert InvalidGrant().to_dict() == {"error": "invalid_grant"}
    assert err.reason == "expired"


@pytest.mark.parametrize("bad", ['quote " inside', "back\\slash", "new\nline", "caf\u00e9"])
def test_description_outside_nqschar_is_refused_rfc6749_5_2(bad: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 6749 §5\.2"):
        InvalidGrant(bad)
    assert not errors.is_valid_description(bad)


def test_basic_challenge_on_invalid_client_rfc6749_5_2() -> None:
    err = InvalidClient("client authentication failed").basic_challenge()
    assert err.status == 401
    assert err.headers["WWW-Authenticate"].startswith("Basic realm=")


def test_use_dpop_nonce_carries_the_nonce_rfc9449_8() -> None:
    err = UseDPoPNonce(nonce="eyJ7S_zG.eyJH0-Z.HX4w-7v")
    assert err.headers == {"DPoP-Nonce": "eyJ7S_zG.eyJH0-Z.HX4w-7v"}
    assert err.to_dict()["error"] == "use_dpop_nonce"


def test_status_override_and_scope_hint() -> None:
    assert InvalidToken().with_status(401).status == 401
    err = InsufficientScope(scope="read:reports")
    assert (err.status, err.scope) == (403, "read:reports")


def test_every_oauth_error_is_an_attesto_error_and_not_a_configuration_error() -> None:
    for cls in ERROR_CLASSES.values():
        assert issubclass(cls, OAuthError)
        assert issubclass(cls, errors.AttestoError)
        assert not issubclass(cls, errors.ConfigurationError)
