"""The hostile-JWT corpus (tests/fixtures/jwt_corpus.json, built by make_jwt_corpus.py with
`cryptography` alone): each malformed or hostile token is refused with its own reason
(RFC 8725, RFC 9068 §4, RFC 7515 §5.2, RFC 7519 §7.2), and the valid controls verify."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import import_key

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.encoding import b64url_decode, b64url_encode
from pyramid_attesto.core.errors import InvalidToken
from pyramid_attesto.core.jwt import _b64url
from pyramid_attesto.core.keys import StaticKeystore
from pyramid_attesto.core.tokens import AccessTokenVerifier

FIXTURES = Path(__file__).parent.parent / "fixtures"
CORPUS: dict[str, Any] = json.loads((FIXTURES / "jwt_corpus.json").read_text())
CASES: list[dict[str, Any]] = CORPUS["cases"]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "make_jwt_corpus", FIXTURES / "make_jwt_corpus.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _token(case: dict[str, Any]) -> str:
    token = case["token"]
    if isinstance(token, dict):  # too big to commit: a recipe
        return str(token["repeat"] * token["times"] + token["suffix"])
    return str(token)


@pytest.fixture(scope="module")
def verifier() -> AccessTokenVerifier:
    keystore = StaticKeystore([], published=[CORPUS["verification_key"]])
    return AccessTokenVerifier(
        keystore,
        issuer=CORPUS["issuer"],
        audience=CORPUS["audience"],
        clock=FrozenClock(CORPUS["now"]),
        leeway=CORPUS["leeway"],
    )


def test_the_corpus_is_reproducible_from_its_generator() -> None:
    generator = _generator()
    assert generator.render(generator.build_corpus()) == (FIXTURES / "jwt_corpus.json").read_text()


def test_the_corpus_is_large_and_has_controls() -> None:
    refused = [c for c in CASES if c["reason"] is not None]
    assert len(refused) >= 25
    assert len({c["reason"] for c in refused}) >= 14
    assert any(c["reason"] is None for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_corpus_case_rfc8725(case: dict[str, Any], verifier: AccessTokenVerifier) -> None:
    """Each case's ``about`` names the clause it exercises."""
    token = _token(case)
    if case["reason"] is None:
        assert verifier.verify(token).subject == "usr_alice"
        return
    with pytest.raises(InvalidToken) as info:
        verifier.verify(token)
    assert info.value.reason == case["reason"], case["about"]
    assert info.value.status == 401
    # Nothing of the token leaks into what a client or a log could see.
    rendered = f"{info.value} {info.value.description} {info.value.to_dict()}"
    for part in {token, *token.split(".")}:
        if len(part) >= 8:
            assert part not in rendered


def test_joserfc_alone_agrees_on_every_bad_signature_case() -> None:
    """A differential check: what we call a bad signature, joserfc's own full-path
    deserialize_compact also refuses with the same key; the controls it accepts."""
    key = import_key(CORPUS["verification_key"])
    for case in CASES:
        if case["reason"] not in (None, "bad_signature"):
            continue
        token = _token(case)
        try:
            jws.deserialize_compact(token, key, algorithms=["ES256"])
        except JoseError:
            accepted = False
        else:
            accepted = True
        assert accepted is (case["reason"] is None), case["name"]


def test_the_fast_base64url_decoder_agrees_with_the_strict_one_rfc4648_5() -> None:
    samples = [b64url_encode(os.urandom(n)) for n in range(40)]
    hostile = ["a", "ab=", "AB", "AAB", "a+b", "ab/c", "ab c", "ab\nc", "ab!c", "QQ==", "Q\x00Q"]
    for text in samples + hostile + [s[:-1] + "_" for s in samples if s]:
        try:
            expected: bytes | None = b64url_decode(text)
        except ValueError:
            expected = None
        try:
            got: bytes | None = _b64url(text)
        except ValueError:
            got = None
        assert got == expected, text
