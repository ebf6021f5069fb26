"""What a flood of refused and aborted calls costs the data service: audit rows, log lines.

    .venv/bin/python benchmarks/abuse.py --clients 50 --seconds 20

It starts a real hub (proxy, JupyterHub, data service; SQLite catalog unless --db-url),
makes an organization with one small and one large dataset, then for ``--seconds`` runs
``--clients`` concurrent clients through the proxy:

- most of them read the small dataset as fast as they can, as five users: each user's
  ``download`` budget (300 a minute) is soon spent, and the rest of their calls are 429;
- ``--aborters`` of them start a CSV download of the large dataset and close the
  connection after its first piece, again and again.

Then it stops the hub (so whatever the service keeps in memory is written out) and
prints the answers by status, the audit rows the run left (by outcome, with the calls
they stand for), and the lines of the hub's log: request lines for 429 answers,
tracebacks, ``StreamClosedError``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hub"))

USERS = [f"user{i}" for i in range(5)]


def large_csv(rows: int) -> bytes:
    lines = ["id,amount,region,note"]
    lines += [f"{i},{i * 1.5:.2f},region-{i % 7},some words of text {i}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def reader(client, url: str, token: str, until: float, statuses: collections.Counter):
    headers = {"Authorization": f"token {token}"}
    while time.monotonic() < until:
        try:
            r = await client.get(url, headers=headers)
            statuses[r.status_code] += 1
        except Exception as e:  # a refused connection counts too
            statuses[type(e).__name__] += 1


async def aborter(client, url: str, token: str, until: float, statuses: collections.Counter):
    headers = {"Authorization": f"token {token}"}
    while time.monotonic() < until:
        try:
            async with client.stream("GET", url, headers=headers) as r:
                statuses[f"{r.status_code} (closed after the first piece)"] += 1
                async for _ in r.aiter_raw():
                    break
        except Exception as e:
            statuses[type(e).__name__] += 1


async def load(hub, tokens: dict[str, str], clients: int, aborters: int, seconds: float):
    import httpx

    api = f"{hub.url}/services/datapilot/api/v1/orgs/bench/datasets"
    statuses: collections.Counter = collections.Counter()
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + aborters)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        tasks = [
            reader(client, f"{api}/small/data", tokens[USERS[i % len(USERS)]], until, statuses)
            for i in range(clients - aborters)
        ]
        tasks += [
            aborter(client, f"{api}/large/data?format=csv", tokens["abby"], until, statuses)
            for _ in range(aborters)
        ]
        await asyncio.gather(*tasks)
    return statuses


def audit_rows(db_url: str) -> dict[str, tuple[int, int]]:
    """outcome -> (rows, calls they stand for) of the dataset.read events."""
    from datapilot_hub.catalog import AuditEvent, Catalog
    from sqlalchemy import select

    catalog = Catalog(db_url)
    out: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    with catalog.session(system=True) as db:
        for event in db.scalars(select(AuditEvent).where(AuditEvent.action == "dataset.read")):
            out[event.outcome][0] += 1
            out[event.outcome][1] += int((event.details or {}).get("count", 1))
    catalog.dispose()
    return {k: tuple(v) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients in all")
    parser.add_argument("--aborters", type=int, default=5, help="of them, aborting downloads")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--large-rows", type=int, default=400_000)
    parser.add_argument("--db-url", help="catalog URL (default: SQLite in the hub's home)")
    parser.add_argument(
        "--rate-limits",
        help="JSON for $DATAPILOT_RATE_LIMITS (default: the service's defaults), e.g."
        ' \'{"download": {"user": "30/minute", "org": null}}\' so that most calls are'
        " refused however fast this machine is",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--keep-log", help="copy the hub's log to this file")
    args = parser.parse_args()

    from datapilot_hub.tests.utils import HubProcess

    with tempfile.TemporaryDirectory(prefix="dp-abuse-") as tmp:
        env = {"DATAPILOT_RATE_LIMITS": args.rate_limits} if args.rate_limits else None
        hub = HubProcess(Path(tmp) / "hub", db_url=args.db_url, env=env)
        hub.start()
        try:
            hub.create_org("bench")
            r = hub.api("PUT", "/orgs/bench/plan", hub.admin_token, json={"plan": "business"})
            r.raise_for_status()
            for user in [*USERS, "abby"]:
                hub.add_member("bench", user, "analyst")
            tokens = {user: hub.user_token(user) for user in [*USERS, "abby"]}
            for name, content in (
                ("small", b"a,b\n1,2\n3,4\n"),
                ("large", large_csv(args.large_rows)),
            ):
                r = hub.upload("bench", tokens["abby"], name, content, f"{name}.csv")
                r.raise_for_status()
                job = hub.wait_job("bench", r.json()["job"]["id"], tokens["abby"], timeout=300)
                assert job["state"] == "succeeded", job
            started = time.monotonic()
            statuses = asyncio.run(load(hub, tokens, args.clients, args.aborters, args.seconds))
            elapsed = time.monotonic() - started
        finally:
            hub.stop()
        rows = audit_rows(hub.env.get("DATAPILOT_DB_URL") or f"sqlite:///{hub.home}/catalog.sqlite")
        log = hub.log_path.read_text(errors="replace")
        if args.keep_log:
            Path(args.keep_log).write_text(log)
    lines = log.splitlines()
    figures = {
        "rate limits": args.rate_limits or "defaults",
        "clients": args.clients,
        "aborters": args.aborters,
        "seconds": round(elapsed, 1),
        "answers": dict(sorted((str(k), v) for k, v in statuses.items())),
        "audit dataset.read rows (rows, calls)": rows,
        "log lines": len(lines),
        "log lines about 429 answers": sum("429 GET" in ln for ln in lines),
        "tracebacks": log.count("Traceback (most recent call last)"),
        "StreamClosedError mentions": log.count("StreamClosedError"),
    }
    for key, value in figures.items():
        print(f"{key:>40}: {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
