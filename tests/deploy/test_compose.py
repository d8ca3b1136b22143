"""deploy/docker-compose.yml, checked statically (Docker does not run here).

The file parses; every built or bind-mounted path exists; the services are there; the
monitor and producer commands are valid ``monitor`` invocations; the configuration the
monitor service runs on is the mounted one and passes the loader with the environment the
service sets; its checkpoint directory is a named volume, so it outlives the container; the
addresses the services use to reach each other agree; Alertmanager names real alerts.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from monitor.cli import _parser
from monitor.config import BOOTSTRAP_ENV, MonitorConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
SERVICES = {"kafka", "monitor", "producer", "prometheus", "alertmanager", "grafana"}


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def bind_mounts(spec: dict[str, Any]) -> list[tuple[Path, str]]:
    """(host path, container path) of a service's bind mounts, short or long syntax."""
    mounts = []
    for volume in spec.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        elif volume.get("type") == "bind":
            source, target = volume["source"], volume["target"]
        else:
            continue
        if source.startswith((".", "/")):
            mounts.append(((DEPLOY / source).resolve(), target))
    return mounts


def host_path(spec: dict[str, Any], container_path: str) -> Path:
    """The host file behind ``container_path`` through the service's bind mounts."""
    wanted = PurePosixPath(container_path)
    best: tuple[int, Path] | None = None
    for source, target in bind_mounts(spec):
        target_path = PurePosixPath(target)
        if wanted == target_path or target_path in wanted.parents:
            depth = len(target_path.parts)
            if best is None or depth > best[0]:
                best = (depth, source / wanted.relative_to(target_path))
    assert best is not None, f"{container_path} is not in a bind mount of {spec.get('volumes')}"
    return best[1]


def command(spec: dict[str, Any]) -> list[str]:
    cmd = spec["command"]
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def parse_cli(argv: list[str]) -> argparse.Namespace:
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:  # argparse exits on a bad command line
        pytest.fail(f"`monitor {' '.join(argv)}` is not a valid command line ({exc})")


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def monitor_config(monkeypatch: pytest.MonkeyPatch) -> MonitorConfig:
    spec = service("monitor")
    args = parse_cli(command(spec))
    for key, value in environment(spec).items():
        monkeypatch.setenv(key, value)
    return load_config(host_path(spec, str(args.config)))


def kafka_address() -> str:
    advertised = environment(service("kafka"))["KAFKA_ADVERTISED_LISTENERS"]
    [plaintext] = [item for item in advertised.split(",") if item.startswith("PLAINTEXT://")]
    return plaintext.removeprefix("PLAINTEXT://")


def test_compose_parses_and_has_the_services():
    data = compose()
    assert SERVICES <= set(data["services"]), sorted(data["services"])


def test_every_bind_mount_exists():
    for name, spec in compose()["services"].items():
        for source, target in bind_mounts(spec):
            assert source.exists(), f"{name}: {source} (mounted at {target}) does not exist"
            if PurePosixPath(target).suffix in {".yml", ".yaml", ".json"}:
                assert source.is_file(), f"{name}: {target} is a file but {source} is not"


def test_every_build_context_and_dockerfile_exists():
    built = 0
    for name, spec in compose()["services"].items():
        build = spec.get("build")
        if build is None:
            continue
        built += 1
        build = {"context": build} if isinstance(build, str) else build
        context = (DEPLOY / build["context"]).resolve()
        assert context.is_dir(), f"{name}: build context {context} does not exist"
        dockerfile = context / build.get("dockerfile", "Dockerfile")
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
    assert built, "no service is built from the repository"


def test_images_are_pinned():
    services = compose()["services"]
    assert services["kafka"]["image"] == "apache/kafka:3.8.0"
    assert services["prometheus"]["image"] == "prom/prometheus:v2.53.0"
    assert services["grafana"]["image"] == "grafana/grafana:11.1.0"
    assert services["alertmanager"]["image"].startswith("prom/alertmanager")
    for name, spec in services.items():
        image = spec.get("image", "")
        assert not image.endswith(":latest"), f"{name}: unpinned image {image}"


def test_kafka_is_a_single_kraft_node_with_a_healthcheck():
    spec = service("kafka")
    env = environment(spec)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    listeners = dict(
        item.split("://", 1) for item in env["KAFKA_LISTENERS"].split(",")
    )  # name -> host:port
    assert listeners["PLAINTEXT"].endswith(":9092")
    assert listeners["CONTROLLER"].endswith(":9093")
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert kafka_address() == "kafka:9092"
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1
    assert spec["healthcheck"]["test"], "kafka has no healthcheck"


def test_monitor_service_runs_the_mounted_config(monkeypatch):
    spec = service("monitor")
    args = parse_cli(command(spec))
    assert args.command == "run"
    assert args.config is not None, "the monitor service runs without --config"
    path = host_path(spec, str(args.config))
    assert path.is_file(), f"{args.config} maps to {path}, which does not exist"
    assert path == (DEPLOY / "monitor" / "compose.yaml").resolve()

    config = monitor_config(monkeypatch)
    assert environment(spec)[BOOTSTRAP_ENV] == kafka_address()
    assert config.kafka.bootstrap_servers == kafka_address()
    assert list(config.kafka.topics) == ["metrics"]
    assert config.kafka.group_id == "monitor"
    assert config.metrics.port == 9108
    assert config.metrics.address == "0.0.0.0", "the endpoint must be reachable from prometheus"
    assert "host" in config.metrics.stream_labels
    demo = [o for o in config.streams.overrides if o.match == "demo.*"]
    assert demo and demo[0].seasonality == 144


def test_monitor_service_wiring(monkeypatch):
    spec = service("monitor")
    config = monitor_config(monkeypatch)
    assert spec["depends_on"]["kafka"]["condition"] == "service_healthy"
    published = {str(port).split(":")[-1] for port in spec.get("ports", [])}
    assert str(config.metrics.port) in published, spec.get("ports")
    assert spec["build"]["context"] == ".."


def named_volumes(spec: dict[str, Any]) -> dict[str, str]:
    """Container path -> volume name of a service's named volumes, short or long syntax."""
    named = {}
    for volume in spec.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
            if not source.startswith((".", "/", "~")):
                named[target] = source
        elif volume.get("type") == "volume":
            named[volume["target"]] = volume["source"]
    return named


def test_monitor_state_is_a_named_volume(monkeypatch):
    """`docker compose restart monitor` (or a new container) finds the checkpoints."""
    config = monitor_config(monkeypatch)
    assert config.state.enabled
    workdirs = re.findall(r"(?m)^WORKDIR\s+(\S+)", (ROOT / "Dockerfile").read_text())
    state_dir = PurePosixPath(workdirs[-1]) / config.state.dir
    assert state_dir == PurePosixPath("/app/state")
    named = named_volumes(service("monitor"))
    assert str(state_dir) in named, f"{state_dir} is not on a named volume: {named}"
    volume = named[str(state_dir)]
    assert volume in (compose().get("volumes") or {}), f"volume {volume} is not declared"
    # Not a bind mount as well, which would shadow the volume.
    assert all(target != str(state_dir) for _, target in bind_mounts(service("monitor")))


def test_producer_feeds_the_topic_the_monitor_consumes(monkeypatch):
    producer = service("producer")
    args = parse_cli(command(producer))
    assert args.command == "feed"
    assert args.bootstrap_servers == kafka_address()
    assert args.topic in monitor_config(monkeypatch).kafka.topics
    assert args.rate == 500
    monitor = service("monitor")
    assert producer.get("image") == monitor.get("image"), "producer and monitor share the image"
    assert producer.get("build") == monitor.get("build")


def test_input_topic_is_created_before_the_daemon_subscribes(monkeypatch):
    services = compose()["services"]
    init = services["kafka-init"]
    argv = [str(part) for part in init["command"]]
    assert argv[argv.index("--topic") + 1] in monitor_config(monkeypatch).kafka.topics
    assert argv[argv.index("--bootstrap-server") + 1] == kafka_address()
    for name in ("monitor", "producer"):
        condition = services[name]["depends_on"]["kafka-init"]["condition"]
        assert condition == "service_completed_successfully", name


def test_prometheus_scrapes_the_monitor_service(monkeypatch):
    spec = service("prometheus")
    assert spec["image"].startswith("prom/prometheus:")
    config_file = host_path(spec, "/etc/prometheus/prometheus.yml")
    assert config_file == (DEPLOY / "prometheus" / "prometheus.yml").resolve()
    prometheus = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    [job] = [job for job in prometheus["scrape_configs"] if job["job_name"] == "monitor"]
    targets = [t for group in job["static_configs"] for t in group["targets"]]
    port = monitor_config(monkeypatch).metrics.port
    assert f"monitor:{port}" in targets, targets
    for pattern in prometheus.get("rule_files", []):
        assert list((config_file.parent).glob(pattern)), f"rule_files {pattern} matches nothing"
    managers = [
        target
        for am in prometheus.get("alerting", {}).get("alertmanagers", [])
        for group in am["static_configs"]
        for target in group["targets"]
    ]
    assert managers == ["alertmanager:9093"]
    assert "9093:9093" in service("alertmanager")["ports"]


def test_alertmanager_config():
    spec = service("alertmanager")
    path = host_path(spec, "/etc/alertmanager/alertmanager.yml")
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    receivers = {receiver["name"] for receiver in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    for route in config["route"].get("routes", []):
        assert route.get("receiver", config["route"]["receiver"]) in receivers


def test_alertmanager_matchers_name_real_alerts():
    """Every alertname a route or inhibit rule matches is an alert of the rules file."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "monitor-rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    matcher = re.compile(r'^alertname\s*(=~|=)\s*"([^"]*)"$')

    def names(matchers: list[str]) -> set[str]:
        found: set[str] = set()
        for text in matchers:
            match = matcher.match(text)
            if match:
                op, value = match.groups()
                found.update(value.split("|") if op == "=~" else [value])
        return found

    matched = set()
    for route in config["route"].get("routes", []):
        matched |= names(route.get("matchers", []))
    for inhibit in config.get("inhibit_rules", []):
        sources = names(inhibit["source_matchers"])
        targets = names(inhibit["target_matchers"])
        assert sources and targets, inhibit
        matched |= sources | targets
    assert matched, "no alertname matcher found"
    assert not matched - alerts, f"unknown alerts {sorted(matched - alerts)}"
    assert "MonitorKafkaUnreachable" in matched


def test_grafana_allows_anonymous_viewers():
    spec = service("grafana")
    env = environment(spec)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert "3000:3000" in spec["ports"]
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        assert host_path(spec, home).is_file()
