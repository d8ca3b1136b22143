"""deploy/grafana: the provisioning files and the two dashboards, checked statically.

The dashboards parse, carry the uids and titles the alert rules and links rely on, every
panel target is a Prometheus query with a refId, the queries use only the Grafana variables
the end-to-end test substitutes, name only metrics the daemon exports, and are valid PromQL
once substituted (promtool parses them as recording rules). The end-to-end test
(test_prometheus_e2e.py) runs the same queries against a real Prometheus.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from monitor.config import MonitorConfig
from monitor.detection import Detector
from monitor.metrics import DaemonMetrics, StreamCollector
from monitor.records import Point

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GRAFANA = DEPLOY / "grafana"
DASHBOARD_DIR = GRAFANA / "dashboards"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "monitor.yml"
COMPOSE = DEPLOY / "docker-compose.yml"

DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
OVERVIEW = "monitor-overview.json"
DRILL_DOWN = "monitor-stream.json"
IDENTITY = {
    OVERVIEW: ("monitor-overview", "Monitor overview"),
    DRILL_DOWN: ("monitor-stream", "Monitor stream drill-down"),
}
# The variables the end-to-end test substitutes, with values like the ones it uses.
ALLOWED = {
    "stream": "demo.cpu{host=h-0001}",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "6h",
}
# $name, ${name}, ${name:format} and the deprecated [[name]].
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


def load_dashboard(name: str) -> dict[str, Any]:
    return json.loads((DASHBOARD_DIR / name).read_text(encoding="utf-8"))


def all_panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from all_panels(panel.get("panels", []))


def exprs(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, expr) of every panel target and annotation query, as the e2e test reads them."""
    for panel in all_panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel.get('title')!r} {target.get('refId')}", target.get("expr", "")
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if annotation.get("builtIn"):
            continue
        expr = annotation.get("expr") or annotation.get("target", {}).get("expr", "")
        yield f"annotation {annotation.get('name')!r}", expr


def variables(text: str) -> set[str]:
    return {next(group for group in match if group) for match in VARIABLE.findall(text)}


def substitute(expr: str) -> str:
    for name, value in ALLOWED.items():
        expr = expr.replace(f"${{{name}}}", value).replace(f"${name}", value)
    return expr


def every_expr() -> list[tuple[str, str, str]]:
    return [(name, where, expr) for name in IDENTITY for where, expr in exprs(load_dashboard(name))]


def exported_metric_names() -> set[str]:
    """Every sample name the daemon's registry can expose (daemon and per-stream metrics)."""
    registry = CollectorRegistry()
    DaemonMetrics(registry)
    detector = Detector(MonitorConfig())
    detector.process([Point("cpu", (("host", "a"),), 0.0, 1.0)])
    registry.register(StreamCollector(detector, threading.Lock(), extra_labels=("host",)))
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    names = set()
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def compose_mounts(service: str) -> dict[str, Path]:
    """Container path -> host path of the bind mounts of a compose service."""
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    mounts = {}
    for volume in compose["services"][service].get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = (DEPLOY / source).resolve()
    return mounts


# ------------------------------------------------------------------------------ dashboards


def test_the_dashboard_folder_holds_exactly_the_two_dashboards():
    assert sorted(p.name for p in DASHBOARD_DIR.glob("*.json")) == sorted(IDENTITY)


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_dashboard_identity(name):
    dashboard = load_dashboard(name)
    uid, title = IDENTITY[name]
    assert dashboard["uid"] == uid
    assert dashboard["title"] == title
    assert dashboard["schemaVersion"] == 39
    assert dashboard.get("id") is None, "provisioned dashboards must not carry a database id"
    assert dashboard["panels"], "no panels"


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_every_panel_queries_the_provisioned_datasource(name):
    dashboard = load_dashboard(name)
    ids = []
    for panel in all_panels(dashboard["panels"]):
        if panel["type"] == "row":
            continue
        where = f"{name}: panel {panel.get('title')!r}"
        ids.append(panel["id"])
        assert panel.get("datasource") == DATASOURCE, where
        targets = panel.get("targets")
        assert targets, f"{where} has no targets"
        ref_ids = [target.get("refId") for target in targets]
        assert all(ref_ids), f"{where}: a target without refId"
        assert len(set(ref_ids)) == len(ref_ids), f"{where}: duplicate refIds {ref_ids}"
        for target in targets:
            assert isinstance(target.get("expr"), str) and target["expr"].strip(), (
                f"{where} {target.get('refId')}: no expr"
            )
            assert target.get("datasource", DATASOURCE) == DATASOURCE, where
    assert len(ids) == len(set(ids)), f"{name}: duplicate panel ids {ids}"


@pytest.mark.parametrize("name", sorted(IDENTITY))
def test_panels_fit_the_grid_without_overlapping(name):
    cells: dict[tuple[int, int], str] = {}
    for panel in all_panels(load_dashboard(name)["panels"]):
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["w"] > 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{name}: {panel['title']!r} overlaps {other!r}"


@pytest.mark.parametrize(("name", "where", "expr"), every_expr())
def test_exprs_use_only_the_allowed_grafana_variables(name, where, expr):
    assert expr.strip(), f"{name}: {where}: empty expr"
    unknown = variables(expr) - set(ALLOWED)
    assert not unknown, f"{name}: {where}: variables {sorted(unknown)} in {expr!r}"
    assert "$" not in substitute(expr), f"{name}: {where}: {expr!r}"


def test_exprs_name_only_metrics_the_daemon_exports():
    exported = exported_metric_names()
    for name, where, expr in every_expr():
        for metric in re.findall(r"\bmonitor_\w+", expr):
            assert metric in exported, f"{name}: {where}: unknown metric {metric} in {expr!r}"


def test_exprs_are_valid_promql(tmp_path):
    """promtool parses each substituted expression as the expr of a recording rule."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: install Debian's prometheus package "
            "(apt-get install prometheus), as .ci/run does in CI"
        )
    rules = [
        {"record": f"grafana:check:{index}", "expr": substitute(expr)}
        for index, (_, _, expr) in enumerate(every_expr())
    ]
    path = tmp_path / "grafana-exprs.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    where = {f"grafana:check:{i}": f"{n}: {w}" for i, (n, w, _) in enumerate(every_expr())}
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n{where}"


def test_overview_panels():
    dashboard = load_dashboard(OVERVIEW)
    panels = {panel["title"]: panel for panel in all_panels(dashboard["panels"])}
    all_exprs = {expr for _, expr in exprs(dashboard)}
    assert "sum(rate(monitor_records_consumed_total[$__rate_interval]))" in all_exprs
    stats = [panel for panel in panels.values() if panel["type"] == "stat"]
    stat_exprs = " ".join(t["expr"] for panel in stats for t in panel["targets"])
    for metric in (
        "monitor_streams_tracked",
        "monitor_records_consumed_total",
        "monitor_records_rejected_total",
        "monitor_events_emitted_total",
        "monitor_consumer_lag",
    ):
        assert metric in stat_exprs, f"no stat panel on {metric}"
    series_exprs = " ".join(
        t["expr"]
        for panel in panels.values()
        if panel["type"] == "timeseries"
        for t in panel["targets"]
    )
    assert "sum by (topic) (rate(monitor_records_consumed_total" in series_exprs
    assert "sum by (reason) (rate(monitor_records_rejected_total" in series_exprs
    assert "sum by (topic, partition) (monitor_consumer_lag)" in series_exprs
    assert "histogram_quantile(0.99" in series_exprs
    assert "monitor_batch_duration_seconds_bucket" in series_exprs

    table = panels["Top anomalous streams now"]
    assert table["type"] == "table"
    [target] = table["targets"]
    assert target["expr"] == "topk(20, monitor_stream_anomaly_score)"
    assert target["instant"] is True and target.get("format") == "table"

    heatmap = panels["Anomalous streams over time"]
    assert heatmap["type"] == "heatmap"
    assert "monitor_stream_anomalous" in heatmap["targets"][0]["expr"]


def test_overview_reliability_row():
    dashboard = load_dashboard(OVERVIEW)
    rows = [panel for panel in dashboard["panels"] if panel["type"] == "row"]
    assert [row["title"] for row in rows] == ["Reliability"]
    [row] = rows
    below = [
        panel
        for panel in dashboard["panels"]
        if panel["type"] != "row" and panel["gridPos"]["y"] > row["gridPos"]["y"]
    ]
    by_title = {panel["title"]: panel for panel in below}
    assert set(by_title) == {
        "Kafka up",
        "Checkpoint age",
        "Checkpoint duration p95",
        "Streams restored and released /s",
    }
    assert by_title["Kafka up"]["type"] == "stat"
    assert "monitor_kafka_up" in by_title["Kafka up"]["targets"][0]["expr"]
    [age] = by_title["Checkpoint age"]["targets"]
    # The gauge is 0 before the first checkpoint: no line rather than 55 years.
    assert age["expr"] == "time() - (monitor_checkpoint_last_timestamp_seconds > 0)"
    [p95] = by_title["Checkpoint duration p95"]["targets"]
    assert p95["expr"].startswith("histogram_quantile(0.95,")
    assert "monitor_checkpoint_duration_seconds_bucket" in p95["expr"]
    moved = " ".join(t["expr"] for t in by_title["Streams restored and released /s"]["targets"])
    assert "rate(monitor_streams_restored_total" in moved
    assert "rate(monitor_streams_released_total" in moved


def test_top_streams_link_to_the_drill_down():
    drill_down = load_dashboard(DRILL_DOWN)
    table = next(
        panel
        for panel in all_panels(load_dashboard(OVERVIEW)["panels"])
        if panel["title"] == "Top anomalous streams now"
    )
    links = [
        link
        for override in table["fieldConfig"]["overrides"]
        if override["matcher"] == {"id": "byName", "options": "stream"}
        for prop in override["properties"]
        if prop["id"] == "links"
        for link in prop["value"]
    ]
    assert links, "the stream column has no data link"
    url = links[0]["url"]
    slug = re.sub(r"[^a-z0-9]+", "-", drill_down["title"].lower()).strip("-")
    assert url.startswith(f"/d/{drill_down['uid']}/{slug}?"), url
    match = re.search(r"var-(\w+)=\$\{__data\.fields\.stream(:\w+)?\}", url)
    assert match, url
    assert match.group(1) in {v["name"] for v in drill_down["templating"]["list"]}


def test_drill_down_has_a_single_valued_stream_variable():
    dashboard = load_dashboard(DRILL_DOWN)
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "stream"]
    assert variable["type"] == "query"
    assert variable["datasource"] == DATASOURCE
    query = variable["query"]
    query = query["query"] if isinstance(query, dict) else query
    assert query == "label_values(monitor_stream_value, stream)"
    # Exprs compare with stream="$stream": one stream at a time.
    assert not variable.get("multi") and not variable.get("includeAll")


def test_every_drill_down_query_selects_the_stream():
    for where, expr in exprs(load_dashboard(DRILL_DOWN)):
        selectors = re.findall(r"\bmonitor_\w+(\{[^}]*\})?", expr)
        assert selectors, f"{where}: {expr!r}"
        for selector in selectors:
            assert 'stream="$stream"' in selector, f"{where}: unfiltered selector in {expr!r}"


def test_drill_down_panels():
    dashboard = load_dashboard(DRILL_DOWN)
    band = None
    for panel in all_panels(dashboard["panels"]):
        metrics = {re.match(r"\w+", t["expr"]).group(0): t for t in panel["targets"]}
        if {"monitor_stream_value", "monitor_stream_expected"} <= set(metrics) and {
            "monitor_stream_expected_lower",
            "monitor_stream_expected_upper",
        } <= set(metrics):
            band = (panel, metrics)
    assert band, "no panel with value, expected, lower and upper"
    panel, metrics = band
    legends = {t["legendFormat"] for t in panel["targets"]}
    fills = {
        (override["matcher"]["options"], prop["value"])
        for override in panel["fieldConfig"]["overrides"]
        for prop in override["properties"]
        if prop["id"] == "custom.fillBelowTo"
    }
    upper = metrics["monitor_stream_expected_upper"]["legendFormat"]
    lower = metrics["monitor_stream_expected_lower"]["legendFormat"]
    assert (upper, lower) in fills, f"no fill between {upper!r} and {lower!r}: {fills}"
    assert {upper, lower} <= legends

    all_exprs = " ".join(expr for _, expr in exprs(dashboard))
    for metric in (
        "monitor_stream_anomaly_score",
        "monitor_stream_anomaly_threshold",
        "monitor_stream_anomalous",
        "monitor_anomaly_events_total",
    ):
        assert metric in all_exprs, f"the drill-down does not show {metric}"


def test_drill_down_annotates_anomalies():
    annotations = [
        a for a in load_dashboard(DRILL_DOWN)["annotations"]["list"] if not a.get("builtIn")
    ]
    assert annotations, "no anomaly annotation"
    for annotation in annotations:
        assert annotation["datasource"] == DATASOURCE
        assert annotation["enable"] is True
        assert 'stream="$stream"' in annotation["expr"]
        assert re.search(r"monitor_(stream_anomal|anomaly_events)", annotation["expr"])


# ------------------------------------------------------------------------------ provisioning


def test_datasource_provisioning():
    provisioning = yaml.safe_load(DATASOURCES.read_text(encoding="utf-8"))
    assert provisioning["apiVersion"] == 1
    [source] = provisioning["datasources"]
    assert source["uid"] == DATASOURCE["uid"]
    assert source["type"] == DATASOURCE["type"]
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert "prometheus" in compose["services"], "the datasource's host is not a compose service"


def test_dashboard_provider_loads_the_path_compose_mounts():
    provisioning = yaml.safe_load(PROVIDERS.read_text(encoding="utf-8"))
    assert provisioning["apiVersion"] == 1
    [provider] = provisioning["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    assert path == "/var/lib/grafana/dashboards"
    mounts = compose_mounts("grafana")
    assert mounts.get(path) == DASHBOARD_DIR.resolve(), mounts
    assert mounts.get("/etc/grafana/provisioning") == (GRAFANA / "provisioning").resolve()
