"""Dashboards from a kernel: publish a notebook, publish the examples, and the pins a
dashboard's kernel reads with."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datapilot_contract import ContractError, publication_body

from ._errors import DatapilotError
from ._flow import Flow, Request, Work, call

if TYPE_CHECKING:
    from ._client import DatapilotClient

#: the dataset the example dashboards read, and the example notebooks (kind, file)
EXAMPLE_DATASET = "sample_sales"
EXAMPLE_CSV = "sample_sales.csv"
EXAMPLES = (
    ("voila", "example-sales-voila.ipynb", "Example sales (Voilà)"),
    ("panel", "example-sales-panel.ipynb", "Example sales (Panel)"),
)


class DashboardInfo(dict):
    """A published dashboard as the service describes it; Jupyter shows it as a link."""

    def _repr_html_(self) -> str:
        from html import escape

        return (
            f'<p>Dashboard <a href="{escape(self.get("url", ""))}" target="_blank">'
            f"{escape(self.get('title', ''))}</a> ({escape(self.get('kind', ''))}),"
            f" version {self.get('version')}, published by {escape(self.get('publisher', ''))}."
            "</p>"
        )

    def __repr__(self) -> str:
        return (
            f"Dashboard {self.get('slug')!r}, version {self.get('version')} ({self.get('kind')}):"
            f" {self.get('url')}"
        )


def _body(path: str | os.PathLike[str], **fields: Any) -> dict[str, Any]:
    """The publication body of a notebook on this machine (its folder is the root)."""
    file = Path(path).expanduser()
    if file.is_absolute():
        root, rel = file.parent, file.name
    else:
        root, rel = Path.cwd(), file.as_posix()
    try:
        return publication_body(root, rel, **fields)
    except ContractError as e:
        raise DatapilotError(e.message, code=e.code, details={"field": e.field}) from None


def publish(
    client: DatapilotClient,
    path: str | os.PathLike[str],
    kind: str,
    title: str | None,
    slug: str | None,
    description: str,
    files: list[str] | None,
    pins: dict[str, int | None] | None,
) -> Flow[DashboardInfo]:
    """POST a notebook and its files as a dashboard (:meth:`DatapilotClient.publish`)."""
    org = client._check_config()
    fields = {
        "kind": kind,
        "title": title,
        "slug": slug,
        "description": description,
        "files": files,
        "pins": pins,
    }
    body = yield Work(lambda: _body(path, **fields))
    response = yield from call(
        Request("POST", f"orgs/{org}/dashboards", json=body, label=body["slug"])
    )
    return DashboardInfo(response.json())


def examples_dir() -> Path:
    """The example notebooks: the checkout's ``notebooks/``, else where a wheel put them."""
    for path in (
        Path(__file__).resolve().parents[1] / "notebooks",
        Path(sys.prefix) / "share" / "datapilot" / "notebooks",
    ):
        if (path / EXAMPLE_CSV).is_file():
            return path
    raise DatapilotError(
        "The example notebooks are not installed with this datapilot_kernel.",
        code="no_examples",
    )


def publish_examples(client: DatapilotClient) -> list[DashboardInfo]:
    """Upload the sample dataset (once) and publish both example dashboards.

    Parameters
    ----------
    client : DatapilotClient
        Who publishes.
    """
    folder = examples_dir()
    if EXAMPLE_DATASET not in set(client.datasets()["name"]):
        client.upload(folder / EXAMPLE_CSV, EXAMPLE_DATASET)
    published = []
    for kind, notebook, title in EXAMPLES:
        published.append(
            client.publish(
                folder / notebook,
                kind=kind,
                title=title,
                description="Monthly sales of the sample dataset by region and product,"
                " with a region picker. Published by dp.publish_examples().",
            )
        )
    return published
