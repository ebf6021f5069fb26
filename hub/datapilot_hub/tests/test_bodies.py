"""Request bodies and uploaded files, through the proxy of a real hub.

Every body has a limit, small but for an allowed upload's; every refusal is the API's
JSON error, also when the body is refused before it is read; compressed files are
counted as they inflate; and a refused or failed upload leaves nothing behind: no
upload or spool file in the service's tmp directory, no job still running, no dataset.
The service's memory is measured around the big bodies: it must not grow with them.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time

import httpx
import pytest
import sqlalchemy as sa

from .utils import API, check_api_response, lying_workbook, running_hub, service_process

MiB = 1024**2
UPLOAD_LIMIT = 40 * MiB
UNCOMPRESSED_LIMIT = 16 * MiB
BODY_TIMEOUT = 5


@pytest.fixture(scope="module")
def hub(request, tmp_path_factory):
    """A hub on SQLite whose service takes uploads of 40 MiB that expand to 16 MiB."""
    env = {
        "DATAPILOT_MAX_UPLOAD_SIZE": str(UPLOAD_LIMIT),
        "DATAPILOT_MAX_UNCOMPRESSED_SIZE": str(UNCOMPRESSED_LIMIT),
        "DATAPILOT_BODY_TIMEOUT": str(BODY_TIMEOUT),
        "DATAPILOT_RATE_LIMITS": json.dumps({"ingest": {"user": None, "org": None}}),
    }
    with running_hub(request, tmp_path_factory, "sqlite", env=env, label="bodies") as proc:
        yield proc


@pytest.fixture(scope="module")
def tokens(hub):
    """acme: alice (analyst), vera (viewer); globex: gary (analyst)."""
    return hub.populate(
        {"acme": "Acme", "globex": "Globex"},
        [("acme", "alice", "analyst"), ("acme", "vera", "viewer"), ("globex", "gary", "analyst")],
    )


def left_behind(hub) -> dict[str, list[str]]:
    """What a refused or failed upload must not leave: files in the service's tmp
    directory and jobs not finished (after waiting for running ones to end)."""
    engine = sa.create_engine(hub.db_url)
    try:
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as db:
                unfinished = [
                    f"{row.id} {row.state}"
                    for row in db.execute(
                        sa.text(
                            "SELECT id, state FROM jobs"
                            " WHERE state NOT IN ('succeeded', 'failed', 'cancelled')"
                        )
                    )
                ]
            if not unfinished or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    finally:
        engine.dispose()
    tmp = hub.service_home / "tmp"
    # (the aggregation engine's spill directory, tmp/duckdb, is there from the start; what
    # is in it counts)
    left = [p for p in tmp.iterdir() if p.name != "duckdb"] + list((tmp / "duckdb").glob("*"))
    return {"tmp": sorted(str(p.relative_to(tmp)) for p in left), "jobs": unfinished}


def nothing_left(hub) -> None:
    assert left_behind(hub) == {"tmp": [], "jobs": []}


def rss(hub) -> int:
    return service_process(hub).memory_info().rss


def post(hub, path: str, token: str | None = None, **kw) -> httpx.Response:
    """A POST through the proxy, checked like every API answer (JSON, CSP header)."""
    return hub.api("POST", path, token, timeout=120, **kw)


def upload(hub, token: str | None, name: str, content: bytes, filename: str, options=None):
    data = {"name": name}
    if options is not None:
        data["options"] = json.dumps(options)
    return post(hub, "/orgs/acme/datasets", token, data=data, files={"file": (filename, content)})


def stream_post(hub, path: str, headers: dict[str, str], declared: int) -> tuple[int, bytes]:
    """POST a body declared as ``declared`` bytes, sent through the proxy as fast as it is
    taken while the answer is read, as a client that does not wait for an early answer
    does; returns the answer's status and body."""
    sock = socket.create_connection(("127.0.0.1", hub.port), timeout=60)
    head = f"POST {API}{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock.sendall(f"{head}Content-Length: {declared}\r\n\r\n".encode())
    stop = threading.Event()

    def send_body() -> None:
        piece = b"--xyz\r\n" + b"x" * 65536
        sent = 0
        try:
            while not stop.is_set() and sent < declared:
                sent += sock.send(piece[: declared - sent])
        except OSError:
            pass  # the other side closed: the answer is what counts

    sender = threading.Thread(target=send_body)
    sender.start()
    answer = b""
    try:
        while b"\r\n\r\n" not in answer:
            answer += sock.recv(65536)
        head_bytes, _, body = answer.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        fields = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        length = int(fields.get("content-length", 0))
        while len(body) < length:
            more = sock.recv(65536)
            if not more:
                break
            body += more
    finally:
        stop.set()
        sender.join()
        sock.close()
    assert fields.get("content-type", "").startswith("application/json"), (lines, body[:200])
    return int(lines[0].split()[1]), body


def test_a_json_body_over_the_limit_is_a_json_413_and_never_held(hub, tokens):
    before = rss(hub)
    # read and dropped, then answered (anonymous: the body is refused before anyone is
    # authenticated); then one declared larger than what is ever read, answered at once
    for size in (32 * MiB, 32 * MiB, 100 * MiB):
        r = post(hub, "/orgs", content=b"x" * size)
        assert r.status_code == 413, r.text
        assert r.json()["error"] == "too_large" and r.json()["details"]["limit"] == MiB
    assert rss(hub) - before < 16 * MiB, (before, rss(hub))
    # the same with a token, and chunked (no declared length): counted as it comes
    r = post(hub, "/orgs", tokens["alice"], content=iter([b"x" * MiB] * 4))
    assert r.status_code == 413 and r.json()["error"] == "too_large"
    # a body within the limit still works on the same connections
    r = post(hub, "/orgs", tokens["alice"], json={"slug": "x"})
    assert r.status_code in (400, 403), r.text


def test_multipart_parts_and_fields_are_capped(hub, tokens):
    t = tokens["alice"]
    before = rss(hub)
    # 600 fields of 60 KB: 36 MB that were all held in memory, never freed
    fields = {f"f{i}": "y" * 60_000 for i in range(600)}
    r = post(hub, "/orgs/acme/datasets", t, data=fields, files={"file": ("x.csv", b"a\n1\n")})
    assert r.status_code == 413 and r.json()["error"] == "fields_too_large", r.text
    assert rss(hub) - before < 16 * MiB, (before, rss(hub))
    fields = {f"f{i}": "y" for i in range(100)}
    r = post(hub, "/orgs/acme/datasets", t, data=fields, files={"file": ("x.csv", b"a\n1\n")})
    assert r.status_code == 413 and r.json()["error"] == "too_many_parts", r.text
    nothing_left(hub)


def test_a_malformed_multipart_body_is_a_json_400(hub, tokens):
    t = tokens["alice"]
    bad_header = (
        b'--xyz\r\nContent-Disposition form-data; name="file"; filename="a.csv"\r\n\r\n'
        b"a\n1\n\r\n--xyz--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=xyz"}
    r = post(hub, "/orgs/acme/datasets", t, content=bad_header, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "invalid_multipart", r.text
    # a bad part after a file part that was already being written
    after_file = (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + b"a\n1\n" * 100_000
        + b"\r\n--xyz\r\n\x00\x01\r\n\r\nx\r\n--xyz--\r\n"
    )
    r = post(hub, "/orgs/acme/datasets", t, content=after_file, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "invalid_multipart", r.text
    long_boundary = {"Content-Type": "multipart/form-data; boundary=" + "b" * 300}
    r = post(hub, "/orgs/acme/datasets", t, content=b"--", headers=long_boundary)
    assert r.status_code == 400 and r.json()["details"]["field"] == "Content-Type", r.text
    nothing_left(hub)


def test_uploads_refused_before_their_body_are_json(hub, tokens):
    content = b"a,b\n" + b"1,2\n" * MiB  # 4 MB
    # each refusal comes once the body has been read and dropped: never the proxy's page
    for _ in range(20):
        r = upload(hub, tokens["vera"], "nope", content, "x.csv")
        assert r.status_code == 403 and r.json()["error"] == "forbidden", r.text
    for token, status in ((None, 401), (tokens["gary"], 404)):
        for _ in range(5):
            r = upload(hub, token, "nope", content, "x.csv")
            assert r.status_code == status, r.text
    nothing_left(hub)


def test_a_declared_length_over_the_upload_limit_is_a_json_413(hub, tokens):
    multipart = "multipart/form-data; boundary=xyz"
    for _ in range(10):
        status, body = stream_post(
            hub,
            "/orgs/acme/datasets",
            {"Authorization": f"token {tokens['alice']}", "Content-Type": multipart},
            5 * 1024**3,
        )
        assert status == 413 and json.loads(body)["error"] == "too_large", body
    # a refusal of who may upload, when the body is too large to be read and dropped
    for _ in range(5):
        status, body = stream_post(
            hub,
            "/orgs/acme/datasets",
            {"Authorization": f"token {tokens['vera']}", "Content-Type": multipart},
            5 * 1024**3,
        )
        assert status == 403 and json.loads(body)["error"] == "forbidden", body
    for _ in range(5):
        status, body = stream_post(hub, "/orgs", {}, 5 * 1024**3)
        assert status == 413 and json.loads(body)["error"] == "too_large", body
    nothing_left(hub)


def test_a_gzip_bomb_fails_its_job_and_leaves_nothing(hub, tokens):
    t = tokens["alice"]
    # 64 KB that inflate to 64 MiB, past the service's limit of 16 MiB
    bomb = gzip.compress(b"a,b\n" + b"0,0\n" * (16 * MiB), 9)
    r = upload(hub, t, "bomb", bomb, "bomb.csv.gz")
    assert r.status_code == 202, r.text
    job = hub.wait_job("acme", r.json()["job"]["id"], t)
    assert job["state"] == "failed", job
    assert (job["result"]["status"], job["result"]["error"]) == (413, "compression_bomb")
    assert hub.api("GET", "/orgs/acme/datasets/bomb", t).status_code == 404
    assert not list((hub.service_home / "storage").glob("org-*/datasets/bomb/*"))
    nothing_left(hub)


def test_a_workbook_whose_directory_lies_is_refused(hub, tokens, tmp_path):
    pytest.importorskip("openpyxl")
    bomb = tmp_path / "bomb.xlsx"
    plain = lying_workbook(bomb, 32 * MiB)
    r = upload(hub, tokens["alice"], "book", bomb.read_bytes(), "book.xlsx")
    assert r.status_code == 413 and r.json()["error"] == "compression_bomb", r.text
    r = upload(hub, tokens["alice"], "book", plain, "book.xlsx")
    assert r.status_code == 202, r.text
    assert hub.wait_job("acme", r.json()["job"]["id"], tokens["alice"])["state"] == "succeeded"
    nothing_left(hub)


def test_unreadable_text_is_a_json_4xx(hub, tokens):
    t = tokens["alice"]
    # sniffing a file with no line break was a 500
    r = upload(hub, t, "flat", b"a" * (30 * MiB), "flat.csv")
    assert r.status_code == 422 and r.json()["error"] == "line_too_long", r.text
    for encoding in ("rot13", "hex", 5):
        r = upload(hub, t, "enc", b"a,b\n1,2\n", "enc.csv", {"encoding": encoding})
        assert r.status_code == 400, r.text
        assert r.json()["details"]["field"] == "options.encoding"
    # a 5 MB line past the first: the job fails with the documented code
    for content, filename in (
        (b"a,b\n1,2\n" + b"x" * (5 * MiB) + b",3\n", "line.csv"),
        (b'{"a": 1}\n{"a": "' + b"x" * (5 * MiB) + b'"}\n', "line.jsonl"),
    ):
        r = upload(hub, t, "line", content, filename)
        assert r.status_code == 202, r.text
        job = hub.wait_job("acme", r.json()["job"]["id"], t)
        assert job["state"] == "failed", job
        assert (job["result"]["status"], job["result"]["error"]) == (422, "line_too_long")
    nothing_left(hub)


def test_a_body_that_never_ends_is_dropped(hub):
    # headers and a part of the body, then nothing: the service waits BODY_TIMEOUT seconds
    # for the rest, not for ever (the proxy answers then for the dropped connection)
    with socket.create_connection(("127.0.0.1", hub.port), timeout=60) as sock:
        sock.sendall(
            f"POST {API}/orgs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: 1000\r\n\r\n{{".encode()
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 "), answer
    # the service is fine afterwards
    check_api_response(hub.api("GET", "/health"))
