"""Production's edge terminates TLS (envoy/targets/k8s-prod.yaml): a second Envoy in front of the
test mesh, rendered with the same TLS settings and a throwaway certificate, answers JSON over
HTTPS and native gRPC over TLS (ALPN h2), and refuses plain HTTP on that port."""

from __future__ import annotations

import ssl

import grpc
import httpx
import pytest
from spotify.catalog.v1 import catalog_pb2, catalog_pb2_grpc

from devdata import demo
from tests.e2e.clients import bearer, bearer_metadata


def test_json_over_https(tls_edge: tuple[str, bytes], demo_token: str) -> None:
    url, certificate = tls_edge
    trust = ssl.create_default_context(cadata=certificate.decode())
    with httpx.Client(base_url=url, verify=trust, timeout=10) as https:
        reply = https.get(f"/v1/tracks/{demo.DEMO_TRACK_ID}", headers=bearer(demo_token))
    assert reply.status_code == 200, reply.text
    assert reply.json()["id"] == demo.DEMO_TRACK_ID
    assert reply.http_version == "HTTP/1.1"


def test_grpc_over_tls(tls_edge: tuple[str, bytes], demo_token: str) -> None:
    url, certificate = tls_edge
    credentials = grpc.ssl_channel_credentials(root_certificates=certificate)
    with grpc.secure_channel(url.removeprefix("https://"), credentials) as channel:
        track = catalog_pb2_grpc.CatalogServiceStub(channel).GetTrack(
            catalog_pb2.GetTrackRequest(id=demo.DEMO_TRACK_ID),
            metadata=bearer_metadata(demo_token),
            timeout=10,
        )
    assert track.id == demo.DEMO_TRACK_ID


def test_plain_http_is_refused_on_the_tls_port(tls_edge: tuple[str, bytes]) -> None:
    url, _ = tls_edge
    with pytest.raises(httpx.HTTPError):
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=2)
