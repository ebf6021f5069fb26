"""Charts and insights in a notebook: HoloViews objects from the service's chart specs,
and the ranked insights shown with their charts."""

from __future__ import annotations

import base64
from html import escape
from typing import Any

#: insights whose chart a notebook shows as a picture, at most (the rest: their sentence)
CHARTS_SHOWN = 12


def holoviews_chart(answer: dict[str, Any]) -> Any:
    """The HoloViews object (Bokeh backend) of a ``visualizations/generate`` answer.

    The spec and the recommendation stay on the object as ``spec`` and
    ``recommendation`` (a copy made by ``.opts`` or ``*`` does not keep them).

    Parameters
    ----------
    answer : dict
        ``{"chart", "recommendation", ...}`` as the service answered.
    """
    from datapilot_charts import to_holoviews

    chart = to_holoviews(answer["chart"], "bokeh")
    chart.spec = answer["chart"]
    chart.recommendation = answer.get("recommendation")
    return chart


def _p(insight: dict[str, Any]) -> str:
    p = insight.get("p_value")
    if p is None:
        return ""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


class Insights(list):  # type: ignore[type-arg]
    """The ranked insights of a dataset version: a list of the service's insight dicts
    (``type``, ``columns``, ``score``, ``test``, ``statistic``, ``p_value``,
    ``effect_size``, ``sentence``, ``sample``, ``chart``), strongest first.

    Jupyter shows them as a list with each one's chart; :meth:`chart` gives one chart
    as a HoloViews object, :meth:`frame` the list as a DataFrame.

    Parameters
    ----------
    answer : dict
        The service's answer: ``dataset``, ``version``, ``rows``, ``sample``,
        ``insights`` and, when asked, ``summary``.
    """

    def __init__(self, answer: dict[str, Any]) -> None:
        super().__init__(answer.get("insights") or [])
        self.answer = answer
        self.summary = (answer.get("summary") or {}).get("text")

    def headline(self) -> str:
        """What was looked at: ``12 insights of 'sales' version 3 (all 2,000 rows)``."""
        a = self.answer
        sample = a.get("sample") or {}
        rows = sample.get("rows", a.get("rows"))
        seen = (
            f"all {a.get('rows', 0):,} rows"
            if rows == a.get("rows")
            else f"a random sample of {rows:,} of {a.get('rows', 0):,} rows"
        )
        n = len(self)
        return (
            f"{n} insight{'' if n == 1 else 's'} of {a.get('dataset')!r} version"
            f" {a.get('version')} ({seen})"
        )

    def chart(self, i: int) -> Any:
        """The chart of insight ``i`` (0 is the strongest) as a HoloViews object.

        Parameters
        ----------
        i : int
            Its rank.
        """
        return holoviews_chart({"chart": self[i]["chart"]})

    def frame(self) -> Any:
        """The insights as a pandas DataFrame: rank, type, columns, score, p-value,
        sentence."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "type": i["type"],
                    "columns": ", ".join(i["columns"]),
                    "score": i["score"],
                    "p_value": i.get("p_value"),
                    "test": i["test"],
                    "sentence": i["sentence"],
                }
                for i in self
            ]
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        if cycle:
            p.text("Insights(...)")
            return
        lines = [self.headline()]
        if self.summary:
            lines.append(self.summary)
        for rank, i in enumerate(self, 1):
            lines.append(f"{rank:>2}. [{i['type']}, {i['score']:.2f}] {i['sentence']}")
        p.text("\n".join(lines))

    def _repr_html_(self) -> str:
        from datapilot_charts import render_png

        items = []
        for rank, i in enumerate(self, 1):
            picture = ""
            if rank <= CHARTS_SHOWN:
                png = base64.b64encode(render_png(i["chart"], width=480, height=270)).decode()
                picture = (
                    f"<img src='data:image/png;base64,{png}' width='480' height='270'"
                    f" alt='{escape(i['chart'].get('title', ''), quote=True)}'>"
                )
            facts = "; ".join(f for f in (i["test"], _p(i)) if f)
            items.append(
                "<li style='margin-bottom:1em'>"
                f"<strong>{escape(i['type'])}</strong> ({escape(', '.join(i['columns']))};"
                f" score {i['score']:.2f})<br>{escape(i['sentence'])}<br>"
                f"<small>{escape(facts)}</small><br>{picture}</li>"
            )
        summary = f"<p>{escape(self.summary)}</p>" if self.summary else ""
        return (
            f"<div class='datapilot-insights'><strong>{escape(self.headline())}</strong>"
            f"{summary}<ol>{''.join(items)}</ol></div>"
        )
