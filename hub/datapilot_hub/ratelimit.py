"""Rate limits on the expensive calls, per user and per organization.

Each limit is a rate such as ``30/minute``, enforced with the generic cell rate
algorithm (GCRA, a token bucket kept as one timestamp per key): a key may spend up to
``count`` calls at once, and earns one back every ``period / count`` seconds. A call is
checked against the caller's and the organization's bucket together, and is charged to
both or to neither.

Two backends answer the same way:

- :class:`MemoryBackend` (the default) keeps the buckets in the process;
- :class:`RedisBackend` keeps them in Redis, checked and charged by one Lua script (atomic
  on the server, timed by the server's clock), so service replicas share one budget.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DatapilotError

log = logging.getLogger(__name__)

#: The calls that are rate limited, with what each covers.
LIMITED_CALLS: dict[str, str] = {
    "ingest": "uploads and workspace ingests (POST /orgs/{org}/datasets)",
    "transform": "transformations (POST /orgs/{org}/datasets/{name}/transform)",
    "insights": "automatic insights (GET /orgs/{org}/datasets/{name}/insights)",
    "download": "data reads (GET /orgs/{org}/datasets/{name}/data, dp.load; POST"
    " .../aggregate, dp.aggregate; POST /orgs/{org}/visualizations/generate, dp.chart)",
}

#: Who a limit applies to: each user, or the whole organization.
SCOPES = ("user", "org")

DEFAULT_RATE_LIMITS: dict[str, dict[str, str]] = {
    "ingest": {"user": "30/minute", "org": "120/minute"},
    "transform": {"user": "30/minute", "org": "120/minute"},
    "insights": {"user": "60/minute", "org": "240/minute"},
    "download": {"user": "300/minute", "org": "1200/minute"},
}

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)?\s*(second|minute|hour|day)s?\s*$")


@dataclass(frozen=True)
class Rate:
    """``count`` calls per ``period`` seconds.

    Parameters
    ----------
    count : int
        Calls allowed in one period (also the largest burst).
    period : int
        The period in seconds.
    text : str
        The rate as configured (``"30/minute"``), for messages.
    """

    count: int
    period: int
    text: str

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``"<count>/<unit>"`` or ``"<count>/<n> <unit>s"`` (second, minute, hour, day).

        Parameters
        ----------
        text : str
            E.g. ``"30/minute"``, ``"1000/day"``, ``"5/10 seconds"``.
        """
        m = _RATE_RE.match(text) if isinstance(text, str) else None
        if not m or int(m.group(1)) < 1 or (m.group(2) is not None and int(m.group(2)) < 1):
            raise ValueError(
                f"{text!r} is not a rate: use '<count>/<unit>' with a count of 1 or more and a"
                f" unit of {', '.join(_UNITS)} (e.g. '30/minute' or '5/10 seconds')"
            )
        count, n, unit = int(m.group(1)), int(m.group(2) or 1), m.group(3)
        return cls(count, n * _UNITS[unit], text.strip())

    @property
    def interval_us(self) -> int:
        """Microseconds to earn one call back."""
        return max(1, self.period * 1_000_000 // self.count)

    @property
    def period_us(self) -> int:
        """The period in microseconds."""
        return self.period * 1_000_000


def parse_rate_limits(value: Mapping[str, Any]) -> dict[str, dict[str, Rate]]:
    """Check and parse the ``rate_limits`` setting.

    Parameters
    ----------
    value : mapping
        ``{call: {"user": rate or None, "org": rate or None}}`` with calls from
        :data:`LIMITED_CALLS`; a missing or ``None`` rate is no limit.
    """
    parsed: dict[str, dict[str, Rate]] = {}
    for call, scopes in value.items():
        if call not in LIMITED_CALLS:
            raise ValueError(f"rate_limits: unknown call {call!r}; use {', '.join(LIMITED_CALLS)}")
        if not isinstance(scopes, Mapping):
            raise ValueError(
                f"rate_limits[{call!r}] must be a dict like {{'user': '30/minute', 'org': ...}}"
            )
        parsed[call] = {}
        for scope, rate in scopes.items():
            if scope not in SCOPES:
                raise ValueError(f"rate_limits[{call!r}]: unknown scope {scope!r}; use user, org")
            if rate is not None:
                parsed[call][scope] = Rate.parse(rate)
    return parsed


@dataclass(frozen=True)
class Denial:
    """Why a call was refused: the first bucket that was empty, and when to retry."""

    index: int
    retry_after: float


def _gcra(tat_us: int | None, now_us: int, rate: Rate) -> tuple[int, float]:
    """One GCRA step: the new theoretical arrival time and the wait (0 when allowed)."""
    tat = max(tat_us or 0, now_us)
    new_tat = tat + rate.interval_us
    allow_at = new_tat - rate.period_us
    if allow_at > now_us:
        return tat, (allow_at - now_us) / 1_000_000
    return new_tat, 0.0


class MemoryBackend:
    """Buckets in this process (the default; each service replica has its own)."""

    def __init__(self) -> None:
        self._tat: dict[str, int] = {}
        self._lock = threading.Lock()
        self._checks = 0

    async def hit(self, keys: Sequence[tuple[str, Rate]]) -> Denial | None:
        """Charge one call to every key, or to none and say which key refused.

        Parameters
        ----------
        keys : sequence of (str, Rate)
            Bucket keys and their rates.
        """
        now = time.time_ns() // 1000
        with self._lock:
            updates = []
            for i, (key, rate) in enumerate(keys):
                new_tat, wait = _gcra(self._tat.get(key), now, rate)
                if wait:
                    return Denial(i, wait)
                updates.append((key, new_tat))
            self._tat.update(updates)
            self._checks += 1
            if self._checks % 1000 == 0:
                # buckets that are full again hold no information: drop them
                self._tat = {k: t for k, t in self._tat.items() if t > now}
        return None

    async def close(self) -> None:
        """Nothing to release."""


# KEYS: bucket keys; ARGV: interval_us, period_us for each key in turn.
# The server's clock times every replica's calls alike.
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local period = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or '0')
  if tat < now then tat = now end
  local allow_at = tat + interval - period
  if allow_at > now then
    return {i, string.format('%.0f', allow_at - now)}
  end
  new[i] = tat + interval
end
for i, key in ipairs(KEYS) do
  local period = tonumber(ARGV[2 * i])
  redis.call('SET', key, string.format('%.0f', new[i]), 'PX', math.ceil(period / 1000) + 1000)
end
return {0, '0'}
"""


class RedisBackend:
    """Buckets in Redis, shared by every replica that uses the same URL and prefix.

    Parameters
    ----------
    url : str
        ``redis://host:port/db``.
    fallback : MemoryBackend, optional
        Used (and an error logged) while Redis cannot be reached, so an outage of Redis
        degrades the limits to per replica instead of stopping the calls.
    """

    def __init__(self, url: str, fallback: MemoryBackend | None = None) -> None:
        import redis.asyncio as aioredis

        self.url = url
        self.redis = aioredis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._script = self.redis.register_script(_LUA)
        self.fallback = fallback

    async def hit(self, keys: Sequence[tuple[str, Rate]]) -> Denial | None:
        """Charge one call to every key, or to none and say which key refused.

        Parameters
        ----------
        keys : sequence of (str, Rate)
            Bucket keys and their rates.
        """
        args: list[int] = []
        for _, rate in keys:
            args += [rate.interval_us, rate.period_us]
        try:
            index, wait = await self._script(keys=[k for k, _ in keys], args=args)
        except Exception as e:
            if self.fallback is None:
                raise
            log.error("Rate limits: Redis at %s failed (%s); limiting per process", self.url, e)
            return await self.fallback.hit(keys)
        if int(index) == 0:
            return None
        return Denial(int(index) - 1, int(wait) / 1_000_000)

    async def close(self) -> None:
        """Close the connection pool."""
        await self.redis.aclose()


class RateLimiter:
    """Check calls against the configured limits, per user and per organization.

    Parameters
    ----------
    limits : mapping
        The ``rate_limits`` setting (see :func:`parse_rate_limits`).
    backend : MemoryBackend or RedisBackend
        Where the buckets live.
    prefix : str
        Prefix of the bucket keys (replicas sharing a budget use the same one).
    """

    def __init__(
        self, limits: Mapping[str, Any], backend: Any = None, prefix: str = "datapilot:rl:"
    ) -> None:
        self.limits = parse_rate_limits(limits)
        self.backend = backend or MemoryBackend()
        self.prefix = prefix

    async def check(self, call: str, user: str, org_id: int, org_slug: str) -> None:
        """Charge one ``call`` to ``user`` and the organization, or raise 429.

        Parameters
        ----------
        call : str
            A key of :data:`LIMITED_CALLS`.
        user : str
            The caller's name (one budget per user across organizations).
        org_id : int
            The organization's id (the bucket key: a re-created slug starts afresh).
        org_slug : str
            The organization's slug, for the message.
        """
        if call not in LIMITED_CALLS:
            raise KeyError(call)
        rates = self.limits.get(call, {})
        keys: list[tuple[str, Rate]] = []
        scopes: list[str] = []
        if "user" in rates:
            keys.append((f"{self.prefix}{call}:user:{user}", rates["user"]))
            scopes.append("user")
        if "org" in rates:
            keys.append((f"{self.prefix}{call}:org:{org_id}", rates["org"]))
            scopes.append("org")
        if not keys:
            return
        denial = await self.backend.hit(keys)
        if denial is None:
            return
        scope = scopes[denial.index]
        rate = keys[denial.index][1]
        retry_after = max(1, math.ceil(denial.retry_after))
        who = f"you ({user})" if scope == "user" else f"the organization {org_slug!r}"
        raise DatapilotError(
            429,
            "rate_limited",
            f"Too many {call} calls: the limit for {who} is {rate.text}. "
            f"Try again in {retry_after} s.",
            limit=f"{call}.{scope}",
            call=call,
            scope=scope,
            rate=rate.text,
            retry_after=retry_after,
        )

    async def close(self) -> None:
        """Release the backend."""
        await self.backend.close()


def rate_limiter_from_config(
    overrides: Mapping[str, Any], redis_url: str = "", prefix: str = "datapilot:rl:"
) -> RateLimiter:
    """The limiter a data service uses: defaults updated by ``overrides``, per call.

    Parameters
    ----------
    overrides : mapping
        ``{call: {"user": rate, "org": rate}}`` replacing the defaults of those calls.
    redis_url : str
        Shared buckets in this Redis when given; in the process otherwise.
    prefix : str
        Prefix of the bucket keys.
    """
    limits = {**DEFAULT_RATE_LIMITS, **overrides}
    backend: Any = MemoryBackend()
    if redis_url:
        backend = RedisBackend(redis_url, fallback=backend)
    return RateLimiter(limits, backend, prefix)
