"""A small MCP server endpoint (Streamable HTTP transport, JSON responses only): ``POST /mcp``
answers ``initialize``, ``ping``, ``tools/list`` and ``tools/call`` (two tools reading the
reports); notifications get ``202 Accepted``; ``GET`` (no server-sent event stream here) and
``DELETE`` (no sessions) get ``405``.

The route is protected by the security policy (``permission="read:reports"``): a request
without a token gets ``401`` with ``WWW-Authenticate: Bearer resource_metadata="..."``, from
which an MCP client discovers the protected-resource metadata, then the authorization server.

``Origin`` is validated on every request (MCP transport §"Security Warning", DESIGN.md D17:
DNS rebinding): a request from a browser page of another origin is refused with ``403``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pyramid.response import Response

__all__ = ["PROTOCOL_VERSIONS", "REPORTS", "bad_origin", "mcp_view", "reports_for"]

PROTOCOL_VERSIONS = ("2025-11-25", "2025-06-18", "2025-03-26")
"""The MCP protocol versions this endpoint speaks, newest first."""

REPORTS: tuple[Mapping[str, Any], ...] = (
    {"id": "q1-2026", "title": "Q1 2026 sales", "owner": "alice", "total": 182_400},
    {"id": "q2-2026", "title": "Q2 2026 sales", "owner": "alice", "total": 201_950},
    {"id": "site-survey", "title": "Site survey, Bobsville", "owner": "bob", "total": 12},
)


def reports_for(subject: str | None) -> list[Mapping[str, Any]]:
    """The reports a user may read (a client token reads them all)."""
    return [r for r in REPORTS if subject is None or r["owner"] == subject]


def allowed_origins(request: Any) -> set[str]:
    origin: str = request.registry.settings["demo.origin"]
    port = origin.rsplit(":", 1)[-1]
    return {origin, f"http://localhost:{port}", f"http://[::1]:{port}"}


def bad_origin(context: Any, request: Any) -> bool:
    """View predicate: an ``Origin`` header naming another origin (DNS rebinding)."""
    origin = request.headers.get("Origin")
    return origin is not None and origin not in allowed_origins(request)


def _rpc(result: object, id_: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def _error(code: int, message: str, id_: object = None) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}


def _json(payload: object, status: int = 200) -> Response:
    response = Response(
        json.dumps(payload, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def forbidden_origin_view(request: Any) -> Response:
    return _json(_error(-32600, "Origin not allowed"), status=403)


def not_allowed_view(request: Any) -> Response:
    response = _json(_error(-32600, "use POST (no event stream, no sessions here)"), status=405)
    response.headers["Allow"] = "POST"
    return response


TOOLS = [
    {
        "name": "list_reports",
        "title": "List reports",
        "description": "List the reports the signed-in user may read.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    },
    {
        "name": "get_report",
        "title": "Get a report",
        "description": "Read one report by its id.",
        "inputSchema": {
            "type": "object",
            "properties": {"id": {"type": "string", "description": "The report id"}},
            "required": ["id"],
            "additionalProperties": False,
        },
    },
]


def _tool_result(data: object, *, error: bool = False) -> dict[str, object]:
    text = json.dumps(data, indent=1) if not isinstance(data, str) else data
    result: dict[str, object] = {"content": [{"type": "text", "text": text}], "isError": error}
    if not error and isinstance(data, dict):
        result["structuredContent"] = data
    return result


def _call_tool(subject: str | None, params: Mapping[str, Any]) -> dict[str, object]:
    name = params.get("name")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise _InvalidParams("arguments must be an object")
    visible = reports_for(subject)
    if name == "list_reports":
        return _tool_result({"reports": [{"id": r["id"], "title": r["title"]} for r in visible]})
    if name == "get_report":
        wanted = arguments.get("id")
        if not isinstance(wanted, str):
            raise _InvalidParams("get_report needs a string id")
        for report in visible:
            if report["id"] == wanted:
                return _tool_result(dict(report))
        return _tool_result(f"no report {wanted!r} for this user", error=True)
    raise _InvalidParams("unknown tool")


class _InvalidParams(Exception):
    pass


def _initialize(params: Mapping[str, Any]) -> dict[str, object]:
    asked = params.get("protocolVersion")
    version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[0]
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {"listChanged": False}},
        "serverInfo": {"name": "pyramid_attesto-demo", "title": "Reports", "version": "0.1"},
        "instructions": "Tools that read the demo's reports.",
    }


_METHODS: dict[str, Callable[[str | None, Mapping[str, Any]], object]] = {
    "initialize": lambda subject, params: _initialize(params),
    "ping": lambda subject, params: {},
    "tools/list": lambda subject, params: {"tools": TOOLS},
    "tools/call": _call_tool,
}


def mcp_view(request: Any) -> Response:
    """``POST /mcp``: one JSON-RPC message in, one JSON response out."""
    version = request.headers.get("MCP-Protocol-Version")
    if version is not None and version not in PROTOCOL_VERSIONS:
        return _json(_error(-32600, "unsupported MCP-Protocol-Version"), status=400)
    try:
        message = json.loads(request.body)
    except ValueError:
        return _json(_error(-32700, "parse error"), status=400)
    if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
        return _json(_error(-32600, "one JSON-RPC 2.0 message per request"), status=400)
    method = message.get("method")
    if "id" not in message:  # a notification or a response: accepted, nothing to say
        return Response(status=202)
    id_ = message["id"]
    if not isinstance(method, str):
        return _json(_error(-32600, "invalid request", id_), status=400)
    handler = _METHODS.get(method)
    if handler is None:
        return _json(_error(-32601, "method not found", id_))
    params = message.get("params") or {}
    if not isinstance(params, dict):
        return _json(_error(-32602, "params must be an object", id_))
    identity = request.identity
    subject = identity.subject if getattr(identity, "is_user", False) else None
    try:
        return _json(_rpc(handler(subject, params), id_))
    except _InvalidParams as exc:
        return _json(_error(-32602, str(exc), id_))
