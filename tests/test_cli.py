"""The ``monitor`` command line: help for every command, and ``check-config``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import main

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "configs"
GOOD_FILES = sorted((CORPUS / "good").glob("*.yaml"))
BAD_FILES = sorted((CORPUS / "bad").glob("*.yaml"))
NEGATIVE_PORT = CORPUS / "bad" / "negative_port.yaml"
SUBCOMMANDS = ["run", "check-config", "broker", "replay", "demo"]


@pytest.fixture
def config_env(tmp_path: Path) -> dict[str, str]:
    """Variables the good files reference (the password file lives in ``tmp_path``)."""
    secret = tmp_path / "kafka.password"
    secret.write_text("file-secret\n", encoding="utf-8")
    return {"KAFKA_PASSWORD": "env-secret", "KAFKA_PASSWORD_FILE": str(secret)}


def monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MONITOR_KAFKA_BOOTSTRAP_SERVERS", None)
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- help --------------------------------------------------------------------------------------


def test_help() -> None:
    result = monitor("--help")
    assert result.returncode == 0, result.stderr
    assert "usage: monitor" in result.stdout
    for command in SUBCOMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(command: str) -> None:
    result = monitor(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: monitor {command}" in result.stdout


def test_no_command_prints_help_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert "usage: monitor" in out
    assert "check-config" in out


def test_check_config_needs_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-config"])
    assert exited.value.code == 2
    assert "FILE" in capsys.readouterr().err


# --- check-config in a subprocess --------------------------------------------------------------


def test_check_config_all_good_files(config_env: dict[str, str]) -> None:
    result = monitor("check-config", *map(str, GOOD_FILES), env=config_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{path}: ok" for path in GOOD_FILES]
    assert result.stderr == ""


def test_check_config_default_and_demo_configs() -> None:
    result = monitor("check-config", "configs/default.yaml", "configs/demo.yaml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["configs/default.yaml: ok", "configs/demo.yaml: ok"]


def test_check_config_bad_file_reports_where_what_and_expected() -> None:
    result = monitor("check-config", str(NEGATIVE_PORT))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"{NEGATIVE_PORT}:3: metrics.port: Input should be greater than or equal to 0 (got -1)"
    ]


def test_check_config_bad_literal_names_the_choices() -> None:
    path = CORPUS / "bad" / "bad_format.yaml"
    result = monitor("check-config", str(path))
    assert result.returncode == 2
    first = result.stderr.splitlines()[0]
    assert first.startswith(f"{path}:4: kafka.format: ")
    assert "'native', 'prometheus-kafka-adapter' or 'telegraf'" in first
    assert first.endswith("(got 'avro')")


def test_check_config_good_and_bad_together(config_env: dict[str, str]) -> None:
    good = CORPUS / "good" / "contract_keys.yaml"
    result = monitor("check-config", str(good), str(NEGATIVE_PORT), env=config_env)
    assert result.returncode == 2
    assert result.stdout.splitlines() == [f"{good}: ok"]
    assert f"{NEGATIVE_PORT}:3: metrics.port:" in result.stderr


def test_check_config_never_prints_the_password() -> None:
    path = CORPUS / "bad" / "sasl_password_type.yaml"
    result = monitor("check-config", str(path))
    assert result.returncode == 2
    assert f"{path}:5: kafka.sasl_password:" in result.stderr
    assert "hunter2-do-not-print" not in result.stderr + result.stdout


def test_check_config_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = monitor("check-config", str(missing))
    assert result.returncode == 2
    assert str(missing) in result.stderr
    assert "cannot read" in result.stderr


# --- check-config in-process -------------------------------------------------------------------


def test_main_check_config_good_files(
    config_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in config_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MONITOR_KAFKA_BOOTSTRAP_SERVERS", raising=False)
    assert main(["check-config", *map(str, GOOD_FILES)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{path}: ok" for path in GOOD_FILES]
    assert captured.err == ""


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_main_check_config_each_bad_file(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MONITOR_TEST_UNSET_USER", raising=False)
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    # The first line names the file (and the line where known); YAML errors span lines.
    assert captured.err.startswith(f"{path}:")


def test_main_check_config_good_and_bad(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("MONITOR_TEST_UNSET_USER", raising=False)
    good = CORPUS / "good" / "stream_labels.yaml"
    several = CORPUS / "bad" / "several_errors.yaml"
    assert main(["check-config", str(several), str(good), str(NEGATIVE_PORT)]) == 2
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [f"{good}: ok"]
    err = captured.err.splitlines()
    assert len([line for line in err if line.startswith(f"{several}:")]) == 12
    assert (
        f"{several}:22: metrics.port: Input should be less than or equal to 65535 (got 70000)"
        in err
    )
    assert f"{several}:33: logging.level: " in captured.err
    assert f"{NEGATIVE_PORT}:3: metrics.port:" in captured.err


def test_check_config_unsafe_tag_is_reported_not_a_traceback(tmp_path: Path) -> None:
    tagged = tmp_path / "tagged.yaml"
    marker = tmp_path / "pwned"
    tagged.write_text(
        f"kafka:\n  group_id: !!python/object/apply:os.system ['touch {marker}']\n",
        encoding="utf-8",
    )
    result = monitor("check-config", str(tagged), str(CORPUS / "good" / "empty.yaml"))
    assert not marker.exists()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"{tagged}:2: ")
    assert result.stdout.splitlines() == [f"{CORPUS / 'good' / 'empty.yaml'}: ok"]
