"""Render the README's pictures of charts and insights from a real hub.

    .venv/bin/python docs/pictures.py

Starts a hub (as ``make run`` does, in a scratch directory), uploads a generated dataset
with known patterns (hub/datapilot_hub/tests/planted.py), asks the API for its insights
and for charts (``?format=png``), and writes into docs/:

- ``chart-line.png``: the chart the service recommends for a date, a measure and a
  category (no type given);
- ``chart-bars-dark.png``: mean score by team, for a dark page;
- ``insights.png``: the strongest insights, each with its sentence and its chart (drawn
  from the insight's own spec by the same renderer).
"""

from __future__ import annotations

import io
import shutil
import sys
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "hub"))


def dataset_csv() -> bytes:
    from datapilot_hub.tests.planted import plant

    df, _ = plant(
        ["trend", "seasonality", "majority", "outlier", "category_outlier", "missing"],
        rows=3000,
        seed=3,
    )
    return df.assign(day=df["day"].dt.strftime("%Y-%m-%d")).to_csv(index=False).encode()


def insight_list(answer: dict, count: int) -> bytes:
    """The strongest insights drawn as one picture: a row each, text and chart."""
    import matplotlib.image as mpimg
    import matplotlib.pyplot as plt

    from datapilot_charts import render_png

    insights = answer["insights"][:count]
    fig, axes = plt.subplots(
        len(insights), 2, figsize=(13, 2.9 * len(insights)), gridspec_kw={"width_ratios": [1.1, 1]}
    )
    fig.suptitle(
        f"Insights of {answer['dataset']!r} version {answer['version']}"
        f" ({answer['rows']:,} rows), strongest first",
        fontsize=13,
        x=0.02,
        ha="left",
    )
    for row, (insight, (text_ax, chart_ax)) in enumerate(zip(insights, axes, strict=True), 1):
        text_ax.axis("off")
        columns = ", ".join(insight["columns"])
        head = f"{row}. {insight['type']}  ({columns}; score {insight['score']:.2f})"
        body = textwrap.fill(insight["sentence"], 70)
        facts = textwrap.fill(insight["test"], 80)
        text_ax.text(0, 0.95, head, fontsize=11, fontweight="bold", va="top")
        text_ax.text(0, 0.78, body, fontsize=9.5, va="top")
        text_ax.text(0, 0.05, facts, fontsize=8, va="bottom", color="#555555")
        png = render_png(insight["chart"], width=560, height=300)
        chart_ax.imshow(mpimg.imread(io.BytesIO(png)))
        chart_ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=80)
    plt.close(fig)
    return out.getvalue()


def main() -> None:
    from datapilot_hub.tests.utils import HubProcess, new_home

    home = new_home("pictures")
    hub = HubProcess(home)
    try:
        hub.start()
        token = hub.populate({"acme": "Acme"}, [("acme", "alice", "analyst")])["alice"]
        r = hub.upload("acme", token, "orders", dataset_csv(), "orders.csv")
        assert hub.wait_job("acme", r.json()["job"]["id"], token)["state"] == "succeeded"
        generate = "/orgs/acme/visualizations/generate"
        pictures = {
            "chart-line.png": (
                {
                    "dataset": "orders",
                    "x": "day",
                    "y": "revenue",
                    "group": "channel",
                    "time_bucket": "week",
                },
                {},
            ),
            "chart-bars-dark.png": (
                {
                    "dataset": "orders",
                    "chart_type": "bar",
                    "x": "team",
                    "y": "score",
                    "aggregation": "mean",
                },
                {"theme": "dark"},
            ),
        }
        for name, (body, params) in pictures.items():
            size = {"format": "png", "width": 720, "height": 360}
            r = hub.api("POST", generate, token, json=body, check=False, params={**size, **params})
            assert r.status_code == 200, r.text
            (HERE / name).write_bytes(r.content)
            spec = hub.api("POST", generate, token, json=body).json()
            print(name, spec["chart"]["title"], (spec["recommendation"] or {}).get("reason"))
        answer = hub.api("GET", "/orgs/acme/datasets/orders/insights", token).json()
        (HERE / "insights.png").write_bytes(insight_list(answer, 5))
        for insight in answer["insights"]:
            print(f"{insight['score']:.2f} {insight['type']}: {insight['sentence']}")
    finally:
        hub.stop()
        hub.remove_accounts()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
