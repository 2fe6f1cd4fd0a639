"""A loopback HTTPS server for the outbound-fetch guard tests.

It serves a test CA's certificate for ``cimd.test`` and ``jwks.test``. The guard reaches it
only because the tests inject a resolver that answers 127.0.0.1 and an address check that
allows loopback: nothing here talks to another machine.
"""

from __future__ import annotations

import datetime
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

HOSTS = ("cimd.test", "jwks.test")

Route = Callable[[BaseHTTPRequestHandler], None]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> tuple[Path, Path, bytes]:
    """A CA and a server certificate for :data:`HOSTS`: (cert file, key file, CA PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("attesto test CA"))
        .issuer_name(_name("attesto test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(HOSTS[0]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOSTS]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file, ca_cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class LoopbackServer:
    """The running server: its port, the client TLS context that trusts it, its routes and
    what it saw (request targets, ``Host`` headers and SNI names)."""

    port: int
    client_context: ssl.SSLContext
    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)

    def url(self, path: str, host: str = HOSTS[0]) -> str:
        return f"https://{host}:{self.port}{path}"

    def json(self, path: str, document: Any, headers: dict[str, str] | None = None) -> str:
        """Serve ``document`` as JSON at ``path``; return its URL."""
        body = json.dumps(document).encode()

        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = route
        return self.url(path)


def _handler(server_state: LoopbackServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            server_state.seen.append((self.path, self.headers.get("Host")))
            route = server_state.routes.get(self.path)
            try:
                if route is None:
                    self.send_error(404)
                else:
                    route(self)
            except OSError:
                pass  # the guard hung up on purpose (size or deadline)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # aborted handshakes and hang-ups are the point of several tests


@contextmanager
def https_server(directory: Path) -> Iterator[LoopbackServer]:
    cert_file, key_file, ca_pem = make_certificates(directory)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    state = LoopbackServer(
        port=0, client_context=ssl.create_default_context(cadata=ca_pem.decode())
    )

    def remember_sni(sock: Any, name: str | None, context: Any) -> None:
        state.sni.append(name)

    server_context.sni_callback = remember_sni
    httpd = _Server(("127.0.0.1", 0), _handler(state))
    httpd.socket = server_context.wrap_socket(httpd.socket, server_side=True)
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def drip(body: bytes, interval: float) -> Route:
    """A route that sends ``body`` one byte every ``interval`` seconds."""

    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(interval)

    return route
