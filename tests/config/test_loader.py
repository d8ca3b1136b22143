"""Loading YAML configuration: the good/bad corpora, the defaults file, env handling, secrets.

Every ``tests/configs/bad/*.yaml`` starts with one or more lines

    # expect: <dotted.key.path>[:<line>] <fragment of the message>

and must produce exactly those issues (path equal, fragment in the message, line equal
when given), no more and no fewer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from monitor.cli import load_config_from_env
from monitor.config import (
    BOOTSTRAP_ENV,
    ConfigError,
    ConfigIssue,
    MonitorConfig,
    load_config,
    load_config_text,
)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_YAML = ROOT / "configs" / "default.yaml"
CORPUS = ROOT / "tests" / "configs"
GOOD_FILES = sorted((CORPUS / "good").glob("*.yaml"))
BAD_FILES = sorted((CORPUS / "bad").glob("*.yaml"))

PASSWORD = "s3cret-from-env"
FILE_PASSWORD = "s3cret-from-file"
_EXPECT = re.compile(r"^# expect: (?P<path>\S+?)(?::(?P<line>\d+))? (?P<fragment>.+)$")


@pytest.fixture
def good_env(tmp_path: Path) -> dict[str, str]:
    """The environment the good files reference (and nothing else)."""
    secret = tmp_path / "kafka.password"
    secret.write_text(f"{FILE_PASSWORD}\n", encoding="utf-8")
    return {"KAFKA_PASSWORD": PASSWORD, "KAFKA_PASSWORD_FILE": str(secret)}


@dataclass(frozen=True)
class Expectation:
    path: str
    line: int | None
    fragment: str

    def matches(self, issue: ConfigIssue) -> bool:
        return (
            issue.path == self.path
            and self.fragment in issue.message
            and (self.line is None or issue.line == self.line)
        )


def expectations(path: Path) -> list[Expectation]:
    found = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.startswith("# expect:"):
            continue
        match = _EXPECT.match(text)
        assert match, f"{path.name}: malformed expect line {text!r}"
        line = int(match["line"]) if match["line"] else None
        found.append(Expectation(match["path"], line, match["fragment"]))
    return found


def _ids(paths: list[Path]) -> list[str]:
    return [p.stem for p in paths]


# --- the corpora -------------------------------------------------------------------------------


def test_corpora_are_big_enough() -> None:
    assert len(GOOD_FILES) >= 6
    assert len(BAD_FILES) >= 12


@pytest.mark.parametrize("path", BAD_FILES, ids=_ids(BAD_FILES))
def test_bad_file_starts_with_expect_lines(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: ")
    assert expectations(path)


@pytest.mark.parametrize("path", GOOD_FILES, ids=_ids(GOOD_FILES))
def test_good_file_loads(path: Path, good_env: dict[str, str]) -> None:
    config = load_config(path, env=good_env)
    assert isinstance(config, MonitorConfig)


@pytest.mark.parametrize("path", BAD_FILES, ids=_ids(BAD_FILES))
def test_bad_file_reports_every_expected_issue(path: Path) -> None:
    expected = expectations(path)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    err = caught.value
    issues = list(err.issues)
    unmatched = []
    for expectation in expected:
        hit = next((issue for issue in issues if expectation.matches(issue)), None)
        if hit is None:
            unmatched.append(expectation)
        else:
            issues.remove(hit)
    assert not unmatched, f"missing {unmatched}; got {err.issues}"
    assert not issues, f"unexpected extra issues {issues}"
    assert err.source == str(path)
    rendered = str(err).splitlines()
    for issue in err.issues:
        prefix = f"{path}:{issue.line}" if issue.line else str(path)
        assert any(line.startswith(f"{prefix}: {issue.path}: ") for line in rendered)


def test_several_errors_are_all_reported_at_once() -> None:
    path = CORPUS / "bad" / "several_errors.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert len(caught.value.issues) == len(expectations(path)) >= 10
    assert len({issue.path.split(".")[0] for issue in caught.value.issues}) >= 6


# --- what the good files mean ------------------------------------------------------------------


def test_contract_keys_file(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "contract_keys.yaml", env=good_env)
    assert config.kafka.bootstrap_servers == "kafka-1:9092,kafka-2:9092"
    assert config.kafka.group_id == "monitor-prod"
    assert config.kafka.topics == ("metrics", "metrics-edge")
    assert config.kafka.format == "telegraf"
    assert config.events.topic == "prod-anomalies"
    assert config.metrics.port == 9200
    # Everything else keeps its default.
    assert config.detector == MonitorConfig().detector


def test_empty_file_is_the_default(good_env: dict[str, str]) -> None:
    assert load_config(CORPUS / "good" / "empty.yaml", env=good_env) == MonitorConfig()


def test_topic_pattern_with_per_topic_formats(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "topic_pattern_formats.yaml", env=good_env)
    assert config.kafka.topics == ()
    assert config.kafka.topic_pattern is not None
    assert re.match(config.kafka.topic_pattern, "metrics.prom.eu")
    assert config.kafka.topic_formats == {
        "metrics.prom.eu": "prometheus-kafka-adapter",
        "metrics.telegraf.eu": "telegraf",
    }


def test_stream_overrides(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "stream_overrides.yaml", env=good_env)
    web, batch, noisy = config.streams.overrides
    assert (web.match, web.seasonality, web.sensitivity, web.warmup) == (
        "web-*.latency",
        144,
        0.8,
        1000,
    )
    assert web.disabled is False
    assert batch.disabled is True
    assert batch.seasonality is None and batch.sensitivity is None and batch.warmup is None
    assert (noisy.sensitivity, noisy.seasonality) == (0.0, 0)


def test_sasl_ssl_password_from_env(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "sasl_ssl_env.yaml", env=good_env)
    assert config.kafka.security_protocol == "SASL_SSL"
    assert config.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert config.kafka.sasl_username == "monitor"
    assert config.kafka.sasl_password == PASSWORD


def test_sasl_ssl_without_password_env_is_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CORPUS / "good" / "sasl_ssl_env.yaml", env={})
    [issue] = caught.value.issues
    assert issue.path == "kafka.sasl_password"
    assert "KAFKA_PASSWORD is not set" in issue.message
    assert issue.line == 7


def test_sasl_password_file(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "sasl_password_file.yaml", env=good_env)
    assert config.kafka.sasl_password == FILE_PASSWORD  # read and stripped
    assert config.kafka.sasl_password_file == good_env["KAFKA_PASSWORD_FILE"]


def test_stream_labels(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "stream_labels.yaml", env=good_env)
    assert config.metrics.stream_labels == ("host", "region", "service")
    assert config.metrics.port == 0
    assert config.logging.level == "DEBUG"


# --- the defaults file -------------------------------------------------------------------------


def test_default_yaml_is_monitor_config_default() -> None:
    assert load_config(DEFAULT_YAML, env={}) == MonitorConfig()


def test_default_yaml_equals_what_run_uses_without_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BOOTSTRAP_ENV, raising=False)
    assert load_config_from_env() == load_config(DEFAULT_YAML, env={})


def _schema_keys(model: type[pydantic.BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            keys |= _schema_keys(annotation, f"{prefix}{name}.")
    return keys


def _yaml_keys(data: dict[str, Any], prefix: str = "") -> set[str]:
    keys = set()
    for name, value in data.items():
        keys.add(prefix + name)
        if isinstance(value, dict) and name != "topic_formats":
            keys |= _yaml_keys(value, f"{prefix}{name}.")
    return keys


def test_default_yaml_writes_out_every_key() -> None:
    data = yaml.safe_load(DEFAULT_YAML.read_text(encoding="utf-8"))
    assert _yaml_keys(data) == _schema_keys(MonitorConfig)


def test_default_yaml_comments_every_key() -> None:
    lines = DEFAULT_YAML.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines):
        if re.match(r"^\s*[a-z_]+:", text):
            assert lines[number - 1].lstrip().startswith("#"), f"line {number + 1}: {text}"


def test_default_yaml_header_names_the_contract() -> None:
    header = DEFAULT_YAML.read_text(encoding="utf-8").split("\nkafka:")[0]
    assert "monitor run" in header and "--config" in header
    for key in (
        "kafka.bootstrap_servers",
        "kafka.group_id",
        "kafka.topics",
        "kafka.format",
        "events.topic",
        "metrics.port",
    ):
        assert key in header


# --- environment -------------------------------------------------------------------------------


def test_env_overrides_bootstrap_servers() -> None:
    env = {BOOTSTRAP_ENV: "a:9092,b:9092"}
    assert load_config_text("", env=env).kafka.bootstrap_servers == "a:9092,b:9092"
    text = "kafka:\n  bootstrap_servers: file:9092\n  group_id: g\n"
    config = load_config_text(text, env=env)
    assert config.kafka.bootstrap_servers == "a:9092,b:9092"
    assert config.kafka.group_id == "g"
    assert load_config(DEFAULT_YAML, env=env).kafka.bootstrap_servers == "a:9092,b:9092"


def test_empty_bootstrap_env_does_not_override() -> None:
    text = "kafka:\n  bootstrap_servers: file:9092\n"
    assert load_config_text(text, env={BOOTSTRAP_ENV: ""}).kafka.bootstrap_servers == "file:9092"


def test_bootstrap_env_is_read_from_os_environ_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(BOOTSTRAP_ENV, "env-host:1234")
    assert load_config_text("").kafka.bootstrap_servers == "env-host:1234"
    assert load_config_from_env().kafka.bootstrap_servers == "env-host:1234"


@pytest.mark.parametrize(
    ("value", "env", "expected"),
    [
        ("${GROUP:-ops}", {}, "ops"),
        ("${GROUP:-ops}", {"GROUP": "team"}, "team"),
        ("${GROUP:-ops}", {"GROUP": ""}, ""),
        ("${GROUP}", {"GROUP": "team"}, "team"),
        ("${GROUP:-}", {}, ""),
        ("${GROUP:-a-b.c:d}", {}, "a-b.c:d"),
        ("pre-${A:-x}-${B:-y}-post", {"B": "2"}, "pre-x-2-post"),
        ("$GROUP", {"GROUP": "team"}, "$GROUP"),
        ("plain", {"plain": "no"}, "plain"),
    ],
)
def test_env_interpolation(value: str, env: dict[str, str], expected: str) -> None:
    config = load_config_text(f'kafka:\n  client_id: "{value}"\n', env=env)
    assert config.kafka.client_id == expected


def test_env_interpolation_in_lists_and_overrides() -> None:
    text = (
        "kafka:\n  topics: ['${T1:-metrics}', '${T2}']\n"
        "streams:\n  overrides:\n    - match: '${PREFIX:-web}-*'\n"
    )
    config = load_config_text(text, env={"T2": "edge"})
    assert config.kafka.topics == ("metrics", "edge")
    assert config.streams.overrides[0].match == "web-*"


def test_unset_env_vars_are_all_reported_with_lines() -> None:
    text = "kafka:\n  client_id: ${NOPE_A}\n  topics:\n    - x\n    - ${NOPE_B}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="s.yaml", env={})
    assert [(i.path, i.line) for i in caught.value.issues] == [
        ("kafka.client_id", 2),
        ("kafka.topics[1]", 5),
    ]
    assert "NOPE_A" in caught.value.issues[0].message
    assert "NOPE_B" in caught.value.issues[1].message


def test_env_argument_isolates_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_TEST_GROUP", "from-os")
    monkeypatch.setenv(BOOTSTRAP_ENV, "os-host:1")
    config = load_config_text("kafka:\n  group_id: ${MONITOR_TEST_GROUP:-dflt}\n", env={})
    assert config.kafka.group_id == "dflt"
    assert config.kafka.bootstrap_servers == "127.0.0.1:9092"


# --- secrets -----------------------------------------------------------------------------------

SECRET = "hunter2-TOP-SECRET"


@pytest.mark.parametrize(
    ("value", "secret"),
    [(f"[{SECRET}]", SECRET), (f"{{pw: {SECRET}}}", SECRET), ("424242424242", "424242424242")],
    ids=["list", "mapping", "int"],
)
def test_bad_password_type_never_shows_the_secret(value: str, secret: str) -> None:
    text = f"kafka:\n  sasl_mechanism: PLAIN\n  sasl_password: {value}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="s.yaml", env={})
    [issue] = caught.value.issues
    assert issue.path == "kafka.sasl_password"
    assert issue.line == 3
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value.issues)


def test_bad_password_file_in_corpus_never_shows_the_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CORPUS / "bad" / "sasl_password_type.yaml", env={})
    assert "hunter2-do-not-print" not in str(caught.value)
    assert "***" in str(caught.value)


def test_password_from_env_not_shown_when_kafka_section_is_invalid() -> None:
    text = (
        "kafka:\n  sasl_password: ${PW}\n  session_timeout_ms: 3000\n"
        "  heartbeat_interval_ms: 2000\n  max_poll_records: 0\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={"PW": SECRET})
    assert SECRET not in str(caught.value)


def test_password_and_password_file_together(tmp_path: Path) -> None:
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET, encoding="utf-8")
    text = f"kafka:\n  sasl_password: other-secret\n  sasl_password_file: {secret_file}\n"
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, env={})
    [issue] = caught.value.issues
    assert issue.path == "kafka.sasl_password_file"
    assert "not both" in issue.message
    assert issue.line == 3
    assert SECRET not in str(caught.value)
    assert "other-secret" not in str(caught.value)


def test_missing_password_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"kafka:\n  sasl_password_file: {missing}\n", env={})
    [issue] = caught.value.issues
    assert issue.path == "kafka.sasl_password_file"
    assert "cannot read secret file" in issue.message
    assert issue.line == 2


def test_repr_never_contains_the_password(good_env: dict[str, str]) -> None:
    for name in ("sasl_ssl_env.yaml", "sasl_password_file.yaml"):
        config = load_config(CORPUS / "good" / name, env=good_env)
        assert config.kafka.sasl_password in (PASSWORD, FILE_PASSWORD)
        for text in (repr(config.kafka), str(config.kafka), repr(config), str(config)):
            assert PASSWORD not in text
            assert FILE_PASSWORD not in text
            assert "sasl_password=" not in text


def test_mistyped_password_key_never_shows_the_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"kafka:\n  sasl_pasword: {SECRET}\n", env={})
    assert SECRET not in str(caught.value)


def test_yaml_error_never_shows_the_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(f'kafka:\n  sasl_password: "{SECRET}\n', env={})
    assert SECRET not in str(caught.value)


# --- immutability ------------------------------------------------------------------------------


def test_config_objects_are_frozen(good_env: dict[str, str]) -> None:
    config = load_config(CORPUS / "good" / "stream_overrides.yaml", env=good_env)
    with pytest.raises(pydantic.ValidationError):
        config.kafka = config.kafka  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.kafka.group_id = "other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.metrics.port = 1  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.detector.forecaster.seasonality = 7  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        config.streams.overrides[0].warmup = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.kafka.topics[0] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        config.streams.overrides.append(config.streams.overrides[0])  # type: ignore[attr-defined]


# --- YAML safety and file handling --------------------------------------------------------------


def _python_tag_yaml(marker: Path) -> str:
    return f"kafka:\n  group_id: !!python/object/apply:os.system [\"echo pwned > '{marker}'\"]\n"


def test_python_tags_are_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ConfigError):
        load_config_text(_python_tag_yaml(marker), env={})
    assert not marker.exists()


@pytest.mark.parametrize(
    "text",
    [
        "kafka:\n  group_id: !!python/object/apply:os.system ['echo pwned']\n",
        "kafka:\n  group_id: !!python/name:os.system\n",
        "kafka:\n  group_id: !Ref other\n",
    ],
    ids=["object-apply", "name", "custom-tag"],
)
def test_unsafe_tags_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text, source="t.yaml", env={})
    assert caught.value.issues[0].line == 2


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("kafka:\n  topics: [a\n  group_id: g\n", source="s.yaml", env={})
    [issue] = caught.value.issues
    assert issue.path == "(file)"
    assert "not valid YAML" in issue.message
    assert issue.line == 3
    assert str(caught.value).startswith("s.yaml:3: (file): not valid YAML")


def test_root_must_be_a_mapping() -> None:
    for text in ("- a\n", "just a string\n", "42\n"):
        with pytest.raises(ConfigError) as caught:
            load_config_text(text, env={})
        assert caught.value.issues[0].path == "(root)"


def test_root_not_a_mapping_has_the_right_line() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(CORPUS / "bad" / "not_a_mapping.yaml", env={})
    assert caught.value.issues[0].line == 2


def test_comment_only_file_is_the_default() -> None:
    assert load_config_text("# nothing here\n\n", env={}) == MonitorConfig()


def test_anchors_and_merge_keys_work() -> None:
    text = (
        "streams:\n  overrides:\n"
        "    - &base {match: 'a-*', sensitivity: 0.9, warmup: 5}\n"
        "    - {<<: *base, match: 'b-*'}\n"
    )
    first, second = load_config_text(text, env={}).streams.overrides
    assert (second.match, second.sensitivity, second.warmup) == ("b-*", 0.9, 5)
    assert first.match == "a-*"


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "missing.yaml", env={})
    assert caught.value.issues[0].path == "(file)"
    assert "cannot read" in caught.value.issues[0].message
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"kafka:\n  group_id: \xff\xfe\n")
    with pytest.raises(ConfigError):
        load_config(binary, env={})


def test_issue_rendering() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text("metrics:\n  port: 70000\n", source="m.yaml", env={})
    assert str(caught.value) == (
        "m.yaml:2: metrics.port: Input should be less than or equal to 65535 (got 70000)"
    )
