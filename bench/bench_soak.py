"""Memory under sustained load: the process's RSS while the token endpoint issues tokens
(client_credentials on SQLite, each request a fresh token) and the resource server verifies
DPoP-bound tokens with a fresh proof each time (memory replay store; its clock moves past
the replay window every round, as time does in a long run). Every cache and memory
store is bounded by size or expiry, so RSS must flatten after warm-up: the table prints RSS
every few thousand requests and the growth over the second half of the run.

Bounded: a fixed number of requests, in-process (no network).
"""

from __future__ import annotations

import base64
import gc
import tempfile
from pathlib import Path

from joserfc.jwk import ECKey

from pyramid_attesto.core.clock import FrozenClock
from pyramid_attesto.core.dpop import build_proof
from pyramid_attesto.core.keys import StaticKeystore, private_signer
from pyramid_attesto.core.tokens import AccessTokenClaims, AccessTokenMinter
from pyramid_attesto.storage import migrate

from . import bench_asrv, bench_resource
from ._harness import QUICK

ROUNDS = 2 if QUICK else 8
PER_ROUND = 20 if QUICK else 2500
REPLAY_WINDOW = 130


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> None:
    signer_key = ECKey.generate_key("P-256")
    keystore = StaticKeystore([private_signer(signer_key.as_dict(private=True))])
    # The resource server's clock moves past the DPoP replay window (121 s) every round, as
    # real time does in a long run, so the bounded replay store reaches its steady size.
    clock = FrozenClock(bench_resource.NOW)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/soak.sqlite"
        migrate.upgrade(url)
        token_app = bench_asrv._app(url, keystore, {})
        basic = "Basic " + base64.b64encode(f"svc:{bench_asrv.SECRET}".encode()).decode()
        issue = bench_asrv._post(
            token_app, "/oauth/token", b"grant_type=client_credentials", Authorization=basic
        )
        resource_app = bench_resource._protected_app(keystore, clock)
        dpop_key = ECKey.generate_key("P-256")
        bound = (
            AccessTokenMinter(keystore, issuer=bench_resource.ISSUER, clock=clock)
            .mint(
                AccessTokenClaims(
                    subject="user-1",
                    client_id="c",
                    audience=bench_resource.RESOURCE,
                    scopes=("read:reports",),
                    cnf={"jkt": dpop_key.thumbprint()},
                ),
                lifetime=ROUNDS * REPLAY_WINDOW + 3600,
            )
            .token
        )

        def protected() -> None:
            proof = build_proof(
                dpop_key, "GET", bench_resource.URL, access_token=bound, clock=clock
            )
            headers = {"Authorization": f"DPoP {bound}", "DPoP": proof}
            status: list[str] = []
            environ = bench_resource._environ(headers)
            body = resource_app(environ, lambda s, h, e=None: status.append(s))
            b"".join(body)
            if not status[0].startswith("200"):
                raise RuntimeError(status[0])

        print("\n## Memory under sustained load (RSS of this process)\n")
        print("| requests | token issued | DPoP-protected calls | RSS MiB |")
        print("|---------:|-------------:|---------------------:|--------:|")
        samples = []
        for round_ in range(1, ROUNDS + 1):
            for _ in range(PER_ROUND):
                issue()
                protected()
            clock.advance(REPLAY_WINDOW)
            gc.collect()
            rss = _rss_kib() / 1024
            samples.append(rss)
            done = round_ * PER_ROUND
            print(f"| {2 * done:8d} | {done:12d} | {done:20d} | {rss:7.1f} |")
        half = samples[len(samples) // 2 - 1]
        print(
            f"\nRSS growth over the second half: {samples[-1] - half:+.1f} MiB "
            f"({(samples[-1] - half) / half * 100:+.1f}%)"
        )
