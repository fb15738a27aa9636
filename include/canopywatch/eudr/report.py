"""A check's outputs: ``plots.geojson``, ``plots.csv`` and a one-page ``report.html``.

The GeoJSON carries every result column per plot (geometry as given) and the job's
lineage as a top-level member; the CSV the same columns with the plot's representative
point as ``lat``/``lon``; the HTML page the verdict counts, the plots that need attention,
the method and the lineage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from jinja2 import Environment, select_autoescape

from canopywatch.eudr.check import RESULT_COLUMNS, VERDICTS, CheckPolicy
from canopywatch.sentinel2 import ATTRIBUTION

ATTENTION = ("deforestation", "possible_deforestation", "invalid", "no_baseline",
             "insufficient_data")  # fmt: skip
MAX_ROWS_IN_REPORT = 200


@dataclass(frozen=True)
class CheckOutputs:
    geojson: Path
    csv: Path
    html: Path
    summary: dict[str, Any]


def summarise(results: gpd.GeoDataFrame) -> dict[str, Any]:
    counts = results["verdict"].value_counts()
    return {
        "plots": len(results),
        "verdicts": {v: int(counts.get(v, 0)) for v in VERDICTS},
        "deforested_ha": round(float(results["deforested_ha"].sum()), 4),
        "harvest_ha": round(float(results["harvest_ha"].sum()), 4),
        "forest_ha_at_cutoff": round(float(results["forest_ha_at_cutoff"].sum()), 4),
    }


def write_outputs(
    results: gpd.GeoDataFrame,
    out_dir: Path,
    *,
    policy: CheckPolicy,
    lineage: Mapping[str, Any],
    title: str,
    seconds: float | None = None,
) -> CheckOutputs:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(results)
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
    geojson = out_dir / "plots.geojson"
    document = json.loads(results[[*RESULT_COLUMNS, "geometry"]].to_json(na="null", drop_id=True))
    document["canopywatch"] = {
        "cutoff": policy.cutoff.isoformat(),
        "summary": summary,
        "lineage": dict(lineage),
        "attribution": ATTRIBUTION,
    }
    geojson.write_text(json.dumps(document, default=str))
    csv = out_dir / "plots.csv"
    table = results[list(RESULT_COLUMNS)].copy()
    points = shapely.point_on_surface(results.geometry.to_numpy())
    table.insert(1, "lat", shapely.get_y(points).round(7))
    table.insert(2, "lon", shapely.get_x(points).round(7))
    table.to_csv(csv, index=False)
    html = out_dir / "report.html"
    html.write_text(_html(results, summary, policy, lineage, title))
    return CheckOutputs(geojson, csv, html, summary)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:24px;max-width:1100px}
h1{font-size:20px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}
th{background:#f3f3f3} .deforestation{color:#b00020;font-weight:600} .possible_deforestation{color:#c77700}
.deforestation_free{color:#1b7f3b} .muted{color:#666} @media print{body{margin:8mm}}
</style></head><body>
<h1>{{ title }}</h1>
<div class="muted">EUDR cut-off {{ cutoff }} &middot; {{ summary.plots }} plot(s){% if summary.seconds %} &middot; checked in {{ summary.seconds }} s{% endif %}</div>
<h2>Verdicts</h2>
<table><tr>{% for v, n in summary.verdicts.items() %}<th>{{ v.replace('_', ' ') }}</th>{% endfor %}</tr>
<tr>{% for v, n in summary.verdicts.items() %}<td class="{{ v }}">{{ n }}</td>{% endfor %}</tr></table>
<p>Deforested after the cut-off: <b>{{ summary.deforested_ha }} ha</b>; plantation harvest (not deforestation): {{ summary.harvest_ha }} ha; forest at the cut-off: {{ summary.forest_ha_at_cutoff }} ha.</p>
<h2>Plots that need attention ({{ attention|length }}{% if more %}, first {{ rows|length }} shown{% endif %})</h2>
{% if rows %}<table><tr><th>plot</th><th>verdict</th><th>forest share</th><th>deforested ha</th><th>first alert</th><th>confidence</th><th>observations</th><th>alerts / problem</th></tr>
{% for r in rows %}<tr><td>{{ r.plot_id }}</td><td class="{{ r.verdict }}">{{ r.verdict.replace('_', ' ') }}</td><td>{{ r.forest_share }}</td><td>{{ r.deforested_ha }}</td><td>{{ r.first_alert_date }}</td><td>{{ r.max_confidence }}</td><td>{{ r.observations_since_cutoff }}</td><td>{{ r.problem or r.alert_ids }}</td></tr>
{% endfor %}</table>{% else %}<p>None.</p>{% endif %}
<h2>Method</h2>
<p>Forest at the cut-off from the forest baseline raster(s) (share of the plot's 10 m pixels marked forest; under {{ min_forest }} % counts as not forest). Deforestation: alerts dated after {{ cutoff }} intersecting the plot (high confidence: deforestation; low only: possible deforestation; withdrawn alerts ignored; plantation harvest counted apart). Coverage: distinct days with a catalogued Sentinel-2 scene over the plot since the cut-off with at most {{ max_cloud }} % cloud; fewer than {{ min_obs }} is insufficient data. Points stand for plots of at most 4 ha (a circle of the declared area).</p>
<h2>Lineage</h2>
<table>{% for k, v in lineage.items() %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
<p class="muted">{{ attribution }}. Per-plot details: plots.geojson, plots.csv.</p>
</body></html>
"""


def _html(
    results: gpd.GeoDataFrame,
    summary: dict[str, Any],
    policy: CheckPolicy,
    lineage: Mapping[str, Any],
    title: str,
) -> str:
    attention = results[results["verdict"].isin(ATTENTION)]
    order = {v: i for i, v in enumerate(ATTENTION)}
    attention = attention.assign(_order=attention["verdict"].map(order)).sort_values(
        ["_order", "deforested_ha"], ascending=[True, False]
    )
    rows = [
        {
            **row,
            "forest_share": "" if row["forest_share_at_cutoff"] != row["forest_share_at_cutoff"]
            else f"{row['forest_share_at_cutoff']:.0%}",
            "max_confidence": "" if row["max_confidence"] != row["max_confidence"]
            else f"{row['max_confidence']:.2f}",
        }
        for row in attention.head(MAX_ROWS_IN_REPORT).drop(columns="geometry").to_dict("records")
    ]  # fmt: skip
    template = Environment(autoescape=select_autoescape(default=True)).from_string(_TEMPLATE)
    return template.render(
        title=title,
        cutoff=policy.cutoff.isoformat(),
        summary=summary,
        attention=attention,
        rows=rows,
        more=len(attention) > MAX_ROWS_IN_REPORT,
        lineage=lineage,
        min_forest=round(policy.min_forest_share * 100),
        max_cloud=round(policy.max_cloud),
        min_obs=policy.min_observations,
        attribution=ATTRIBUTION,
    )
