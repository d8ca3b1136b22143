"""The Dockerfile at the repository root, checked statically (Docker does not run here).

Multi-stage on python:3.11-slim (a wheel built, then installed); runs as a non-root user;
its ENTRYPOINT is the console script pyproject.toml declares and its CMD a valid ``monitor``
command line whose configuration is copied into the image and loads; the healthcheck and
EXPOSE name the metrics port of that configuration.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import tomllib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from monitor.cli import _parser
from monitor.config import load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
BASE = "python:3.11-slim"
UID = 10001


@dataclass
class Instruction:
    keyword: str
    value: str

    def exec_form(self) -> list[str]:
        """The JSON (exec) form of the arguments."""
        parsed = json.loads(self.value)
        assert isinstance(parsed, list) and all(isinstance(p, str) for p in parsed), self
        return parsed

    def flags_and_rest(self) -> tuple[dict[str, str], str]:
        """Leading --flag=value options, and what follows them."""
        flags = {}
        rest = self.value
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.lstrip()
        return flags, rest


def instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    result: list[Instruction] = []
    pending = ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1].rstrip() + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, value = text.partition(" ")
        result.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, "the Dockerfile ends with a continuation line"
    return result


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions():
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"{instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


def final_stage() -> list[Instruction]:
    return stages()[-1]


def last(keyword: str, stage: list[Instruction] | None = None) -> Instruction:
    found = [i for i in (stage or final_stage()) if i.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def image_path(container_path: str) -> Path:
    """The repository file COPY puts at ``container_path`` in the final image."""
    wanted = PurePosixPath(container_path)
    for instruction in final_stage():
        if instruction.keyword != "COPY":
            continue
        flags, rest = instruction.flags_and_rest()
        if "from" in flags:
            continue
        *sources, dest = rest.split()
        for source in sources:
            if dest.endswith("/") and not source.endswith("/"):
                target = PurePosixPath(dest) / PurePosixPath(source).name
            else:
                target = PurePosixPath(dest)
            if wanted == target:
                return ROOT / source
            if target in wanted.parents and (ROOT / source).is_dir():
                return ROOT / source / wanted.relative_to(target)
    pytest.fail(f"{container_path} is not copied into the image from the repository")


def cmd_args() -> object:
    argv = last("CMD").exec_form()
    try:
        return _parser().parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"CMD {argv} is not a valid monitor command line ({exc})")


def test_multi_stage_build_on_python_slim():
    all_stages = stages()
    assert len(all_stages) >= 2, "expected a build stage and a runtime stage"
    names = []
    for stage in all_stages:
        words = stage[0].value.split()
        assert words[0] == BASE, f"FROM {stage[0].value}: not {BASE}"
        if len(words) == 3 and words[1].upper() == "AS":
            names.append(words[2])
    build = " ".join(i.value for stage in all_stages[:-1] for i in stage if i.keyword == "RUN")
    assert "pip wheel" in build or "-m build" in build, "the build stage builds no wheel"
    runtime = final_stage()
    from_build = [
        i
        for i in runtime
        if i.keyword in {"COPY", "RUN"} and any(f"from={name}" in i.value for name in names)
    ]
    assert from_build, "the final stage takes nothing from the build stage"
    installs = [i.value for i in runtime if i.keyword == "RUN" and "pip install" in i.value]
    assert installs, "the final stage installs no wheel"


def test_build_stage_copies_only_existing_files_that_dockerignore_keeps():
    patterns = [
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages():
        for instruction in stage:
            if instruction.keyword not in {"COPY", "ADD"}:
                continue
            flags, rest = instruction.flags_and_rest()
            if "from" in flags:
                continue
            for source in rest.split()[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
                top = PurePosixPath(source).parts[0]
                ignored = [p for p in patterns if fnmatch.fnmatch(top, p)]
                assert not ignored, f"COPY {source} is excluded by .dockerignore {ignored}"


def test_dockerignore_keeps_local_state_out_of_the_context():
    patterns = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for name in (".venv", ".git", "state", "mlruns", ".pytest_cache", ".mypy_cache"):
        assert name in patterns, f".dockerignore does not exclude {name}"


def test_entrypoint_is_the_console_script():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    entrypoint = last("ENTRYPOINT").exec_form()
    assert entrypoint == ["monitor"]
    assert scripts.get(entrypoint[0]) == "monitor.cli:main"


def test_cmd_runs_a_config_shipped_in_the_image():
    args = cmd_args()
    assert args.command == "run"
    assert args.config is not None
    source = image_path(str(args.config))
    assert source.is_file(), f"{args.config} comes from {source}, which does not exist"
    assert source.resolve().parent == (ROOT / "configs").resolve()
    config = load_config(source)
    assert config.metrics.port == 9108
    assert config.metrics.address == "0.0.0.0", "the endpoint must be reachable from outside"


def test_configs_are_copied_to_etc_monitor():
    assert image_path("/etc/monitor/default.yaml") == ROOT / "configs" / "default.yaml"
    assert last("WORKDIR").value == "/app"


def test_runs_as_a_non_root_user():
    # Numeric, so that Kubernetes' runAsNonRoot can verify it without a runAsUser.
    user = last("USER").value.split(":")[0]
    assert user not in {"root", "0"}
    assert user == str(UID), f"USER {user}: expected the numeric uid {UID}"
    run = " ".join(i.value for i in final_stage() if i.keyword == "RUN")
    assert f"--uid {UID}" in run, f"the image does not create a user with uid {UID}"


def test_exposes_the_metrics_port():
    ports = {
        port.split("/")[0]
        for i in final_stage()
        if i.keyword == "EXPOSE"
        for port in i.value.split()
    }
    assert "9108" in ports


def test_healthcheck_fetches_the_metrics_endpoint_with_python():
    flags, rest = last("HEALTHCHECK").flags_and_rest()
    keyword, _, command = rest.partition(" ")
    assert keyword == "CMD"
    argv = json.loads(command) if command.startswith("[") else shlex.split(command)
    assert argv[0] in {"python", "python3"}, "slim has no curl or wget: use python"
    assert "-c" in argv
    code = argv[argv.index("-c") + 1]
    compile(code, "<healthcheck>", "exec")
    assert "http://127.0.0.1:9108/metrics" in code
    assert "timeout" in flags
