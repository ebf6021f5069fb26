"""The forwarding route's own answers: authentication, limits, an unreachable service."""

from __future__ import annotations

import pytest

from .utils import api_request, assert_error


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("GET", ("me",), None),
        ("DELETE", ("orgs", "acme", "datasets", "sales"), None),
        ("POST", ("orgs", "acme", "datasets", "sales", "aggregate"), b"{}"),
        ("POST", ("ingest",), b'{"path": "a.csv", "name": "a"}'),
    ],
)
async def test_unauthenticated_refused(jp_fetch, method, path, body) -> None:
    # refused before anything is sent: with an unreachable service this would be a 502
    reply = await api_request(
        jp_fetch, *path, method=method, body=body, headers={"Authorization": "token wrong"}
    )
    assert_error(reply, 403, "forbidden")


@pytest.mark.parametrize(
    "method, body",
    [("GET", None), ("DELETE", None), ("POST", b'{"slug": "acme"}'), ("PUT", b'{"role": "x"}')],
)
async def test_unreachable_service(jp_fetch, closed_port_url, method, body) -> None:
    reply = await api_request(
        jp_fetch, "orgs", "acme", method=method, body=body, params={"limit": "10"}
    )
    body = assert_error(reply, 502, "service_unavailable")
    assert closed_port_url in body["message"]


async def test_unreachable_service_chunked_upload(jp_fetch) -> None:
    async def producer(write):
        for _ in range(4):
            await write(b"x" * 100)

    reply = await api_request(
        jp_fetch,
        "orgs",
        "acme",
        "datasets",
        method="POST",
        body_producer=producer,
        headers={"Content-Type": "text/csv"},
    )
    assert_error(reply, 502, "service_unavailable")


async def test_upload_too_large(jp_fetch) -> None:
    reply = await api_request(jp_fetch, "orgs", "acme", "datasets", method="POST", body=b"x" * 2048)
    assert_error(reply, 413, "too_large", limit=1024)


async def test_dot_segments_refused(jp_fetch) -> None:
    reply = await api_request(jp_fetch, "orgs", "..", "..", "hub", "api", "users")
    assert_error(reply, 400, "invalid_input", field="path")


async def test_unsupported_method(jp_fetch) -> None:
    reply = await api_request(jp_fetch, "orgs", "acme", method="PATCH", body=b"{}")
    assert_error(reply, 405, "method_not_allowed")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_another_organization_is_not_forwarded(jp_fetch, method) -> None:
    # this server belongs to acme (DATAPILOT_ORG): its token acts for acme alone, so a
    # call for globex is refused here, never sent (with no service it would be a 502)
    reply = await api_request(jp_fetch, "orgs", "globex", "datasets", method=method)
    assert_error(reply, 404, "not_found", organization="globex")
