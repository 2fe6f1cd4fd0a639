"""Assertion helpers for OAuth error responses and ``WWW-Authenticate`` challenges.

- :func:`assert_oauth_error`: the response is the RFC 6749 §5.2 / RFC 6750 §3.1 / RFC 9449
  §7.1 error ``error`` (in the JSON body, in the challenge, or in the redirect of an
  authorization response, RFC 6749 §4.1.2.1), with the expected status;
- :func:`assert_challenge`: the response challenges with ``scheme`` and these parameters;
- :func:`parse_challenges`: RFC 9110 §11.6.1 ``WWW-Authenticate`` parsing.

They take a WebTest response (or anything with ``status_int`` or ``status_code``, ``headers``
and ``body``). pytest rewrites the asserts of this module (``pytest_attesto/__init__.py``
registers it), so a failure shows the values compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Challenge",
    "assert_challenge",
    "assert_oauth_error",
    "oauth_error",
    "parse_challenges",
]

_TOKEN: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN68: Final = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_OWS: Final = re.compile(r"[ \t]*")
_SEPARATORS: Final = re.compile(r"[ \t,]*")


@dataclass(frozen=True)
class Challenge:
    """One challenge: its ``scheme``, its auth-params (names lower-cased, values unquoted)
    and its ``token68`` if it has one instead (RFC 9110 §11.2)."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=dict)
    token68: str | None = None


def _quoted(header: str, pos: int) -> tuple[str, int]:
    """The quoted-string starting at ``header[pos] == '"'`` (RFC 9110 §5.6.4)."""
    out: list[str] = []
    pos += 1
    while pos < len(header):
        char = header[pos]
        if char == "\\":
            if pos + 1 >= len(header):
                break
            out.append(header[pos + 1])
            pos += 2
        elif char == '"':
            return "".join(out), pos + 1
        else:
            out.append(char)
            pos += 1
    raise ValueError(f"unterminated quoted-string in {header!r}")


def parse_challenges(header: str) -> list[Challenge]:
    """The challenges of one ``WWW-Authenticate`` field value (RFC 9110 §11.6.1).

    >>> parse_challenges('Bearer error="invalid_token", DPoP algs="ES256"')
    ... # doctest: +NORMALIZE_WHITESPACE
    [Challenge(scheme='Bearer', params={'error': 'invalid_token'}, token68=None),
     Challenge(scheme='DPoP', params={'algs': 'ES256'}, token68=None)]
    """
    found: list[tuple[str, dict[str, str], str | None]] = []
    pos, end = 0, len(header)
    while True:
        pos = _SEPARATORS.match(header, pos).end()  # type: ignore[union-attr]
        if pos >= end:
            return [Challenge(scheme, params, token68) for scheme, params, token68 in found]
        name = _TOKEN.match(header, pos)
        if name is None:
            raise ValueError(f"malformed challenge at {pos} in {header!r}")
        pos = _OWS.match(header, name.end()).end()  # type: ignore[union-attr]
        if found and pos < end and header[pos] == "=":
            pos = _OWS.match(header, pos + 1).end()  # type: ignore[union-attr]
            if pos < end and header[pos] == '"':
                value, pos = _quoted(header, pos)
            else:
                token = _TOKEN.match(header, pos)
                if token is None:
                    raise ValueError(f"malformed auth-param value at {pos} in {header!r}")
                value, pos = token.group(), token.end()
            found[-1][1][name.group().lower()] = value
            continue
        token68 = None
        if pos > name.end() and pos < end and not _looks_like_param(header, pos):
            match = _TOKEN68.match(header, pos)
            if match is not None:
                token68, pos = match.group(), match.end()
        found.append((name.group(), {}, token68))


def _looks_like_param(header: str, pos: int) -> bool:
    token = _TOKEN.match(header, pos)
    if token is None:
        return False
    after = _OWS.match(header, token.end()).end()  # type: ignore[union-attr]
    if after >= len(header) or header[after] != "=":
        return False
    value = _OWS.match(header, after + 1).end()  # type: ignore[union-attr]
    return value < len(header) and (header[value] == '"' or _TOKEN.match(header, value) is not None)


def _status(response: Any) -> int:
    status = getattr(response, "status_int", None)
    if status is None:
        status = getattr(response, "status_code", None)
    if not isinstance(status, int):
        raise TypeError(f"not an HTTP response: {response!r}")
    return status


def _body_json(response: Any) -> Any:
    content_type = str(response.headers.get("Content-Type", ""))
    if "json" not in content_type:
        return None
    body = getattr(response, "body", None)
    if body is None:
        body = getattr(response, "content", b"")
    if not isinstance(body, (str, bytes)):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def _challenges(response: Any) -> list[Challenge]:
    headers = response.headers
    values = (
        headers.getall("WWW-Authenticate")
        if hasattr(headers, "getall")
        else [headers.get("WWW-Authenticate")]
    )
    found: list[Challenge] = []
    for value in values:
        if value:
            found.extend(parse_challenges(str(value)))
    return found


def _redirect_error(response: Any) -> dict[str, str] | None:
    location = response.headers.get("Location")
    if not location:
        return None
    parts = urlsplit(str(location))
    for component in (parts.query, parts.fragment):
        params = dict(parse_qsl(component))
        if "error" in params:
            return params
    return None


def oauth_error(response: Any) -> dict[str, str] | None:
    """The OAuth error a response carries, or ``None``: the JSON body's error object, else
    the parameters of the challenge that names an error, else the error parameters of an
    authorization response redirect (query or fragment, RFC 6749 §4.1.2.1)."""
    body = _body_json(response)
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return {k: v for k, v in body.items() if isinstance(v, str)}
    for challenge in _challenges(response):
        if "error" in challenge.params:
            return dict(challenge.params)
    return _redirect_error(response)


def assert_oauth_error(
    response: Any,
    error: str,
    *,
    status: int | None = None,
    scheme: str | None = None,
    description: str | None = None,
) -> dict[str, str]:
    """Assert that ``response`` is the OAuth error ``error``; return its parameters.

    ``status`` checks the HTTP status; ``scheme`` (``"Bearer"`` or ``"DPoP"``) that a
    ``WWW-Authenticate`` challenge of that scheme carries the same error (RFC 6750 §3,
    RFC 9449 §7.1); ``description`` the exact ``error_description``. When the response has
    both a JSON error and a challenge, they must agree.
    """
    __tracebackhide__ = True
    actual_status = _status(response)
    found = oauth_error(response)
    assert found is not None, (
        f"expected OAuth error {error!r}, but the {actual_status} response carries none"
    )
    assert found.get("error") == error, (
        f"expected OAuth error {error!r}, got {found.get('error')!r} ({actual_status}): "
        f"{found.get('error_description', '')}"
    )
    if status is not None:
        assert actual_status == status, (
            f"OAuth error {error!r} came with status {actual_status}, expected {status}"
        )
    with_error = [c for c in _challenges(response) if "error" in c.params]
    for challenge in with_error:
        assert challenge.params["error"] == error, (
            f"the {challenge.scheme} challenge says {challenge.params['error']!r}, "
            f"the body says {error!r}"
        )
    if scheme is not None:
        schemes = [c.scheme.lower() for c in with_error]
        assert scheme.lower() in schemes, (
            f"expected a {scheme} challenge with error {error!r}, got "
            f"{response.headers.get('WWW-Authenticate')!r}"
        )
    if description is not None:
        assert found.get("error_description") == description, found
    return found


_NO_ERROR: Final[Any] = object()


def assert_challenge(
    response: Any,
    scheme: str,
    *,
    status: int | None = 401,
    error: str | None = _NO_ERROR,
    **params: str,
) -> dict[str, str]:
    """Assert that ``response`` challenges with ``scheme`` and return its parameters.

    ``error=None`` asserts a challenge *without* an error (a request without credentials,
    RFC 6750 §3.1); ``error="..."`` that error; leaving it out checks nothing about it.
    Every other keyword is an auth-param the challenge must carry with that value
    (``scope="read:reports"``, ``algs="ES256"``).
    """
    __tracebackhide__ = True
    if status is not None:
        assert _status(response) == status, f"expected status {status}, got {_status(response)}"
    challenges = _challenges(response)
    matching = [c for c in challenges if c.scheme.lower() == scheme.lower()]
    assert matching, (
        f"no {scheme} challenge in WWW-Authenticate: {response.headers.get('WWW-Authenticate')!r}"
    )
    found = dict(matching[0].params)
    if error is not _NO_ERROR:
        assert found.get("error") == error, (
            f"the {scheme} challenge's error is {found.get('error')!r}, expected {error!r}"
        )
    for name, value in params.items():
        assert found.get(name.lower()) == value, (
            f"the {scheme} challenge's {name} is {found.get(name.lower())!r}, expected {value!r}"
        )
    return found
