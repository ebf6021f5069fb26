"""The narrator: a short summary of the ranked insights, written by a language model.

Off by default. When :attr:`Narrator.url` is set, ``GET .../insights?summary=true`` sends
the strongest insights' sentences (the numbers already in them, nothing else from the
dataset) to an OpenAI-compatible chat completions endpoint and checks the answer: every
number it cites must be one of the numbers in those sentences, written the same way, or
the summary is dropped (a model that rounds, adds or invents a figure is not trusted).
The prompt and the response go into the audit log, whatever became of them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

import httpx
from traitlets import Float, Integer, Unicode, default
from traitlets.config import Configurable

#: insights put before the model at most
MAX_INSIGHTS = 8
SYSTEM_PROMPT = (
    "You summarise statistical findings about one dataset for a business reader, in at most"
    " four sentences of plain language. Use only the findings given. Every number you write"
    " must appear in the findings exactly as written there: do not round, convert, add or"
    " compute numbers. Do not use headings or lists."
)
# a date (with an optional time), else a number with optional sign, thousands separators,
# decimals, exponent and percent sign
_NUMBER = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2})?)?"
    r"|[-+−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?%?",
    re.IGNORECASE,
)


def cited_numbers(text: str) -> list[str]:
    """The numbers and dates a text cites, normalized (no sign, separators or percent)."""
    out = []
    for token in _NUMBER.findall(text):
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", token):
            out.append(token)
            continue
        out.append(token.lstrip("+-−").rstrip("%").replace(",", "").lower())
    return out


@dataclass
class Summary:
    """What the narrator answered.

    Parameters
    ----------
    status : str
        ``ok``, ``dropped`` (it cited a number that is in no insight), ``failed`` (no
        usable answer) or ``off``.
    text : str, optional
        The summary (only when ``ok``).
    reason : str, optional
        Why it was dropped or failed.
    prompt, response : str, optional
        What was sent and what came back, for the audit log.
    model : str, optional
        The model asked.
    """

    status: str
    text: str | None = None
    reason: str | None = None
    prompt: str | None = None
    response: str | None = None
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``summary`` of the insights answer."""
        return {
            "status": self.status,
            "text": self.text,
            "reason": self.reason,
            "model": self.model,
        }

    def audit(self) -> dict[str, Any]:
        """The audit event's record of the exchange."""
        return {
            "status": self.status,
            "model": self.model,
            "reason": self.reason,
            "prompt": self.prompt,
            "response": self.response,
        }


class Narrator(Configurable):
    """Summaries of the insights by any OpenAI-compatible chat completions endpoint."""

    url = Unicode(
        help="""Base URL of an OpenAI-compatible API; empty (the default) turns the narrator off.

        The narrator posts to ``<url>/chat/completions`` (a URL that already ends in
        ``/chat/completions`` is used as it is). The strongest insights' sentences are sent
        to it: set it only to an endpoint trusted with what they say about the data.
        Defaults to ``$DATAPILOT_LLM_URL``.

        Example::

            c.Narrator.url = "https://api.openai.com/v1"
        """,
    ).tag(config=True)

    @default("url")
    def _default_url(self) -> str:
        return os.environ.get("DATAPILOT_LLM_URL", "").strip()

    model = Unicode(
        help="""The model named in each request.

        Defaults to ``$DATAPILOT_LLM_MODEL``, else ``gpt-4o-mini``.

        Example::

            c.Narrator.model = "llama3.1:8b"
        """,
    ).tag(config=True)

    @default("model")
    def _default_model(self) -> str:
        return os.environ.get("DATAPILOT_LLM_MODEL", "").strip() or "gpt-4o-mini"

    api_key = Unicode(
        help="""The API key, sent as ``Authorization: Bearer <key>`` (none when empty).

        Defaults to ``$DATAPILOT_LLM_API_KEY``. It reaches the data service only:
        notebook servers are not given the hub's environment.

        Example::

            c.Narrator.api_key = open("/etc/datapilot/llm-key").read().strip()
        """,
    ).tag(config=True)

    @default("api_key")
    def _default_api_key(self) -> str:
        return os.environ.get("DATAPILOT_LLM_API_KEY", "").strip()

    timeout = Float(
        30,
        help="""Seconds to wait for the model's answer before the summary is given up.

        Example::

            c.Narrator.timeout = 60
        """,
    ).tag(config=True)

    max_tokens = Integer(
        300,
        help="""The most tokens the model may answer with.

        Example::

            c.Narrator.max_tokens = 200
        """,
    ).tag(config=True)

    @property
    def enabled(self) -> bool:
        """Whether a URL is configured."""
        return bool(self.url)

    @property
    def endpoint(self) -> str:
        """The chat completions URL."""
        base = self.url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"

    def prompt(self, dataset: str, answer: dict[str, Any]) -> str:
        """The user message: the dataset and its strongest insights' sentences."""
        lines = [
            f"Dataset {dataset}, version {answer['version']}, {answer['rows']} rows.",
            "Findings, strongest first:",
        ]
        for i, insight in enumerate(answer["insights"][:MAX_INSIGHTS], 1):
            lines.append(f"{i}. {insight['sentence']}")
        return "\n".join(lines)

    async def summarize(self, dataset: str, answer: dict[str, Any]) -> Summary:
        """Ask the model for a summary of ``answer`` (an insights answer) and check it.

        Parameters
        ----------
        dataset : str
            The dataset's name.
        answer : dict
            The insights answer (``version``, ``rows``, ``insights``).
        """
        if not self.enabled:
            return Summary("off", reason="The narrator is not configured (DATAPILOT_LLM_URL).")
        if not answer["insights"]:
            return Summary("off", reason="There are no insights to summarise.")
        prompt = self.prompt(dataset, answer)
        body = {
            "model": self.model,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        summary = Summary("failed", prompt=prompt, model=self.model)
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.post(self.endpoint, json=body, headers=headers)
            summary.response = r.text[:20_000]
            r.raise_for_status()
            text = r.json()["choices"][0]["message"]["content"].strip()
        except (httpx.HTTPError, ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            summary.reason = f"The model's endpoint gave no usable answer ({type(e).__name__})."
            return summary
        allowed = set(cited_numbers(prompt))
        foreign = [n for n in cited_numbers(text) if n not in allowed]
        if foreign:
            summary.status = "dropped"
            summary.reason = (
                f"The summary cited {', '.join(sorted(set(foreign)))}, which no insight"
                " states; it was dropped."
            )
            return summary
        summary.status, summary.text = "ok", text
        return summary
