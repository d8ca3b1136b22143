"""Every secret path of the configuration: from the environment, from a file, never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, load_config_text

ROOT = Path(__file__).resolve().parents[2]
SECRET = "do-not-show-Vb61qa"
SECRETS = [("kafka", "sasl_password"), ("metrics", "basic_auth_password")]
NEEDS = {"kafka": "  sasl_mechanism: PLAIN\n", "metrics": "  basic_auth_username: u\n"}


@pytest.mark.parametrize(("section", "key"), SECRETS)
def test_secret_from_env(section: str, key: str) -> None:
    text = f"{section}:\n{NEEDS[section]}  {key}: ${{SECRET}}\n"
    config = load_config_text(text, env={"SECRET": SECRET})
    assert getattr(getattr(config, section), key) == SECRET
    assert SECRET not in repr(config) and SECRET not in str(config)


@pytest.mark.parametrize(("section", "key"), SECRETS)
def test_secret_from_file(section: str, key: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(f"{SECRET}\n", encoding="utf-8")
    text = f"{section}:\n{NEEDS[section]}  {key}_file: {secret_file}\n"
    config = load_config_text(text, env={})
    assert getattr(getattr(config, section), key) == SECRET  # read and stripped
    assert SECRET not in repr(config)


@pytest.mark.parametrize(("section", "key"), SECRETS)
def test_secret_in_an_invalid_config_is_masked(section: str, key: str) -> None:
    text = f"{section}:\n{NEEDS[section]}  {key}: [{SECRET}]\n  port_typo: 1\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    assert SECRET not in str(caught.value)
    assert f"{section}.{key}: Input should be a valid string (got '***')" in str(caught.value)


@pytest.mark.parametrize(("section", "key"), SECRETS)
def test_secret_and_secret_file_together(section: str, key: str, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file-Qp20\n", encoding="utf-8")
    text = f"{section}:\n{NEEDS[section]}  {key}: {SECRET}\n  {key}_file: {secret_file}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    [issue] = caught.value.issues
    assert issue.path == f"{section}.{key}_file" and "not both" in issue.message
    assert SECRET not in str(caught.value) and "from-file-Qp20" not in str(caught.value)


def test_unreadable_secret_file_names_the_file_not_its_content(tmp_path: Path) -> None:
    binary = tmp_path / "secret.bin"
    binary.write_bytes(b"\xff\xfe" + SECRET.encode())
    text = f"metrics:\n  basic_auth_username: u\n  basic_auth_password_file: {binary}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    assert "cannot read secret file" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_check_config_never_prints_a_secret(tmp_path: Path) -> None:
    """``monitor check-config`` on a bad file holding secrets given both ways."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        "kafka:\n  sasl_mechanism: PLAIN\n  sasl_password: ${KAFKA_PW}\n  sasl_pasword: x\n"
        f"metrics:\n  basic_auth_username: u\n  basic_auth_password: [{SECRET}]\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor", "check-config", str(path)],
        capture_output=True,
        text=True,
        env={"KAFKA_PW": "env-pw-Lm33", "PATH": "/usr/bin:/bin"},
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "metrics.basic_auth_password" in result.stderr
    for secret in (SECRET, "env-pw-Lm33"):
        assert secret not in result.stdout + result.stderr


@pytest.mark.parametrize(
    "tag",
    ["!!python/object:collections.OrderedDict {}", "!!python/object/new:os.system [id]"],
)
def test_python_object_tags_are_refused(tag: str, tmp_path: Path) -> None:
    marker = tmp_path / "constructed"
    text = f"kafka:\n  group_id: {tag}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    [issue] = caught.value.issues
    assert issue.path == "(file)" and "could not determine a constructor" in issue.message
    assert not marker.exists()


def test_python_object_tag_in_the_bad_corpus() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(ROOT / "tests" / "configs" / "bad" / "python_object_tag.yaml", env={})
    assert "python/object" in str(caught.value)
