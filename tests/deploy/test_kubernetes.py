"""deploy/kubernetes, checked statically (no cluster here).

Every manifest parses; the Deployment, Service and ServiceMonitor select each other by
labels and name the same port; the ConfigMap's monitor.yaml loads and is mounted where the
container's arguments look for it; the pod runs as the image's non-root user on a read-only
root filesystem; the checkpoint directory the config names is a writable mount of the
shared ReadWriteMany claim of pvc.yaml; and prometheusrule.yaml is what
render_prometheusrule.py makes of deploy/prometheus/rules/monitor-rules.yml.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from monitor.cli import _parser
from monitor.config import BOOTSTRAP_ENV, load_config

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "monitor-rules.yml"
RENDER = KUBE / "render_prometheusrule.py"
MANIFESTS = sorted(KUBE.glob("*.yaml"))
EXPECTED = {
    "configmap.yaml": "ConfigMap",
    "deployment.yaml": "Deployment",
    "service.yaml": "Service",
    "servicemonitor.yaml": "ServiceMonitor",
    "prometheusrule.yaml": "PrometheusRule",
    "pvc.yaml": "PersistentVolumeClaim",
}


def documents() -> list[dict[str, Any]]:
    docs = []
    for path in MANIFESTS:
        docs.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return docs


def one(kind: str) -> dict[str, Any]:
    found = [doc for doc in documents() if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    return one("Deployment")["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    [monitor] = [c for c in pod_spec()["containers"] if c["name"] == "monitor"]
    return monitor


def pod_labels() -> dict[str, str]:
    return one("Deployment")["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def config_path() -> PurePosixPath:
    argv = [str(arg) for arg in container()["args"]]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"args {argv} are not a valid monitor command line ({exc})")
    assert args.command == "run"
    assert args.config is not None, "the container runs without --config"
    return PurePosixPath(str(args.config))


def load_configmap_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    for item in container().get("env", []):
        monkeypatch.setenv(item["name"], str(item["value"]))
    path = tmp_path / "monitor.yaml"
    path.write_text(one("ConfigMap")["data"]["monitor.yaml"], encoding="utf-8")
    return load_config(path)


def test_every_manifest_parses():
    assert sorted(p.name for p in MANIFESTS) == sorted(EXPECTED)
    for path in MANIFESTS:
        docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
        assert [doc["kind"] for doc in docs] == [EXPECTED[path.name]], path.name
        for doc in docs:
            assert doc["apiVersion"], path.name
            assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"])


def test_deployment_selects_its_pods_and_runs_several_replicas():
    deployment = one("Deployment")
    assert deployment["apiVersion"] == "apps/v1"
    assert selects(deployment["spec"]["selector"]["matchLabels"], pod_labels())
    assert deployment["spec"]["replicas"] >= 2


def test_replicas_share_one_consumer_group(tmp_path, monkeypatch):
    config = load_configmap_config(tmp_path, monkeypatch)
    assert config.kafka.group_id == "monitor"
    # A literal, not an environment reference that could differ from pod to pod.
    raw = yaml.safe_load(one("ConfigMap")["data"]["monitor.yaml"])
    assert raw["kafka"]["group_id"] == config.kafka.group_id


def test_configmap_config_loads_with_the_deployment_environment(tmp_path, monkeypatch):
    env = {item["name"]: item["value"] for item in container()["env"]}
    assert env.get(BOOTSTRAP_ENV), f"the container does not set {BOOTSTRAP_ENV}"
    config = load_configmap_config(tmp_path, monkeypatch)
    assert config.kafka.bootstrap_servers == env[BOOTSTRAP_ENV]
    assert config.metrics.address == "0.0.0.0"
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports["metrics"] == config.metrics.port == 9108


def test_deployment_mounts_the_configmap_where_its_args_look():
    path = config_path()
    configmap = one("ConfigMap")
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    mounts = [
        mount
        for mount in container()["volumeMounts"]
        if volumes[mount["name"]].get("configMap", {}).get("name") == configmap["metadata"]["name"]
    ]
    assert len(mounts) == 1, "the ConfigMap is not mounted exactly once"
    [mount] = mounts
    volume = volumes[mount["name"]]["configMap"]
    if "subPath" in mount:
        assert PurePosixPath(mount["mountPath"]) == path
        key = mount["subPath"]
    else:
        assert PurePosixPath(mount["mountPath"]) == path.parent
        files = {item["path"]: item["key"] for item in volume.get("items", [])}
        key = files.get(path.name, path.name)
    assert key in configmap["data"], f"{path} is key {key!r}, not in the ConfigMap"
    assert key == "monitor.yaml"


def test_probes_fetch_the_metrics_endpoint():
    for probe in ("livenessProbe", "readinessProbe"):
        http = container()[probe]["httpGet"]
        assert http["path"] == "/metrics", probe
        assert http["port"] == "metrics", probe


def test_resources_are_set():
    resources = container()["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_runs_as_the_image_user_on_a_read_only_root():
    pod = pod_spec().get("securityContext", {})
    own = container().get("securityContext", {})
    merged = {**pod, **own}
    assert merged["runAsNonRoot"] is True
    dockerfile_user = re.findall(r"(?m)^USER\s+(\d+)", (ROOT / "Dockerfile").read_text())
    assert merged["runAsUser"] == 10001 == int(dockerfile_user[-1])
    assert own["readOnlyRootFilesystem"] is True
    assert own["allowPrivilegeEscalation"] is False
    assert "ALL" in own["capabilities"]["drop"]


def image_workdir() -> PurePosixPath:
    """The image's working directory, against which a relative ``state.dir`` resolves."""
    workdirs = re.findall(r"(?m)^WORKDIR\s+(\S+)", (ROOT / "Dockerfile").read_text())
    return PurePosixPath(workdirs[-1])


def test_state_dir_is_a_writable_mount_of_the_shared_claim(tmp_path, monkeypatch):
    config = load_configmap_config(tmp_path, monkeypatch)
    assert config.state.enabled
    state_dir = image_workdir() / config.state.dir  # an absolute state.dir stays as it is
    assert state_dir == PurePosixPath("/app/state")
    volumes = {volume["name"]: volume for volume in pod_spec()["volumes"]}
    [mount] = [m for m in container()["volumeMounts"] if PurePosixPath(m["mountPath"]) == state_dir]
    assert not mount.get("readOnly")
    assert "subPath" not in mount, "every replica must see the whole store"
    claim = volumes[mount["name"]]["persistentVolumeClaim"]
    pvc = one("PersistentVolumeClaim")
    assert claim["claimName"] == pvc["metadata"]["name"] == "monitor-state"
    assert not claim.get("readOnly")
    # Every replica of the group mounts the same claim, so a moved partition finds its state.
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    assert pvc["spec"]["resources"]["requests"]["storage"]
    assert pvc["metadata"]["labels"] == one("Deployment")["metadata"]["labels"]
    # The non-root user can write to it.
    assert pod_spec()["securityContext"]["fsGroup"] == 10001


def test_no_other_volume_holds_state():
    """Only /tmp stays an emptyDir: nothing the daemon must keep lives there."""
    mounts = {m["name"]: m["mountPath"] for m in container()["volumeMounts"]}
    for volume in pod_spec()["volumes"]:
        if "emptyDir" in volume:
            assert mounts[volume["name"]] == "/tmp", volume


def test_service_selects_the_pods_and_names_the_container_port():
    service = one("Service")
    assert selects(service["spec"]["selector"], pod_labels())
    # The ServiceMonitor's job label is the Service name; the alert rules use job="monitor".
    assert service["metadata"]["name"] == "monitor"
    [port] = service["spec"]["ports"]
    container_ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert port["name"] == "metrics" and port["name"] in container_ports
    assert port["port"] == 9108
    assert port.get("targetPort", port["port"]) in {port["name"], container_ports[port["name"]]}


def test_servicemonitor_selects_the_service_and_its_port():
    monitor = one("ServiceMonitor")
    service = one("Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    assert "jobLabel" not in monitor["spec"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"]
    assert endpoint.get("path", "/metrics") == "/metrics"


def test_prometheusrule_is_up_to_date():
    result = subprocess.run(
        [sys.executable, str(RENDER), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, (
        f"{result.stdout}{result.stderr}\n"
        "regenerate it: python deploy/kubernetes/render_prometheusrule.py"
    )


def test_prometheusrule_wraps_the_rules_file_unchanged():
    rule = one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == rules["groups"]


def test_render_check_fails_on_a_stale_manifest(tmp_path):
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text((KUBE / "prometheusrule.yaml").read_text() + "# edited by hand\n")
    command = [sys.executable, str(RENDER), "--check", "--output", str(stale)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    missing = subprocess.run(
        [*command[:-1], str(tmp_path / "absent.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    written = tmp_path / "written.yaml"
    subprocess.run([sys.executable, str(RENDER), "--output", str(written)], check=True, timeout=60)
    assert written.read_text() == (KUBE / "prometheusrule.yaml").read_text()
