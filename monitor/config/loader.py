"""Load a YAML configuration file safely, strictly, and report every problem at once.

String values may reference the environment as ``${NAME}`` or ``${NAME:-default}``;
``MONITOR_KAFKA_BOOTSTRAP_SERVERS`` overrides ``kafka.bootstrap_servers`` and
``kafka.sasl_password_file`` is read into ``kafka.sasl_password`` (and
``metrics.basic_auth_password_file`` into ``metrics.basic_auth_password``).

>>> config = load_config_text("kafka:\\n  group_id: ${GROUP:-ops}\\n", env={})
>>> config.kafka.group_id
'ops'
>>> try:
...     load_config_text("kafka:\\n  grup_id: x\\nmetrics:\\n  port: -1\\n", source="bad.yaml")
... except ConfigError as err:
...     print(err)
bad.yaml:2: kafka.grup_id: unknown key
bad.yaml:4: metrics.port: Input should be greater than or equal to 0 (got -1)
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from monitor.config.exceptions import ConfigError, ConfigIssue
from monitor.config.schema import MonitorConfig

BOOTSTRAP_ENV = "MONITOR_KAFKA_BOOTSTRAP_SERVERS"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_config(path: str | Path, env: Mapping[str, str] | None = None) -> MonitorConfig:
    """Load and validate the configuration file at ``path``.

    Raises :class:`ConfigError` listing every issue (file, line, key path, value).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigIssue("(file)", f"cannot read: {exc}")]) from exc
    return load_config_text(text, source=str(path), env=env)


def load_config_text(
    text: str, source: str = "<string>", env: Mapping[str, str] | None = None
) -> MonitorConfig:
    """Validate configuration YAML given as text (see :func:`load_config`)."""
    env = os.environ if env is None else env
    issues: list[ConfigIssue] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text) if root is not None else {}
    except yaml.YAMLError as exc:
        raise ConfigError(source, [_yaml_issue(exc)]) from exc
    lines: dict[tuple[str | int, ...], int] = {}
    if root is not None:
        _index_lines(root, (), lines, issues)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else None
        raise ConfigError(
            source, [ConfigIssue("(root)", "expected a mapping of sections", None, line)]
        )
    data = _interpolate(data, (), env, issues, lines)
    _apply_env_overrides(data, env)
    _read_secret_files(data, issues, lines)
    try:
        config = MonitorConfig.model_validate_json(json.dumps(data, default=str))
    except ValidationError as exc:
        issues.extend(_issues_from(exc, lines))
        config = None
    if issues or config is None:
        raise ConfigError(source, sorted(issues, key=lambda issue: issue.line or 0))
    return config


def _yaml_issue(exc: yaml.YAMLError) -> ConfigIssue:
    """The YAML problem and its position, without quoting the source (it may hold secrets)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    context = getattr(exc, "context", None)
    message = f"not valid YAML: {problem}" + (f" ({context})" if context else "")
    if mark is not None:
        message += f" at column {mark.column + 1}"
    return ConfigIssue("(file)", message, None, mark.line + 1 if mark is not None else None)


def _index_lines(
    node: yaml.Node,
    path: tuple[str | int, ...],
    lines: dict[tuple[str | int, ...], int],
    issues: list[ConfigIssue],
) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                issues.append(
                    ConfigIssue(
                        _dotted((*path, key)), "duplicate key", None, key_node.start_mark.line + 1
                    )
                )
            seen.add(key)
            _index_lines(value_node, (*path, key), lines, issues)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _index_lines(item, (*path, index), lines, issues)


def _interpolate(
    value: Any,
    path: tuple[str | int, ...],
    env: Mapping[str, str],
    issues: list[ConfigIssue],
    lines: dict[tuple[str | int, ...], int],
) -> Any:
    if isinstance(value, dict):
        return {k: _interpolate(v, (*path, k), env, issues, lines) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, (*path, i), env, issues, lines) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _ENV_REF.fullmatch(value)

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(
            ConfigIssue(
                _dotted(path), f"environment variable {name} is not set", None, lines.get(path)
            )
        )
        return ""

    result = _ENV_REF.sub(substitute, value)
    if whole is not None and result:
        # A value that is one reference takes the YAML type of what it expands to
        # (port: ${PORT:-9108} is an integer), without parsing tags or structures.
        try:
            typed = yaml.safe_load(result)
        except yaml.YAMLError:
            return result
        if isinstance(typed, bool | int | float) and not isinstance(typed, str):
            return typed
    return result


def _apply_env_overrides(data: dict[str, Any], env: Mapping[str, str]) -> None:
    servers = env.get(BOOTSTRAP_ENV)
    if servers:
        kafka = data.setdefault("kafka", {})
        if isinstance(kafka, dict):
            kafka["bootstrap_servers"] = servers


SECRET_FILES = (("kafka", "sasl_password"), ("metrics", "basic_auth_password"))
"""Secrets that may be given as ``<key>_file``: (section, key)."""


def _read_secret_files(
    data: dict[str, Any], issues: list[ConfigIssue], lines: dict[tuple[str | int, ...], int]
) -> None:
    """Read each ``<secret>_file`` into ``<secret>`` (stripped); the file's text is never shown."""
    for section_name, key in SECRET_FILES:
        section = data.get(section_name)
        file_key = f"{key}_file"
        if not isinstance(section, dict) or not section.get(file_key):
            continue
        secret_path = section[file_key]
        where = (section_name, file_key)
        if section.get(key):
            issues.append(
                ConfigIssue(
                    _dotted(where), f"give {key} or {file_key}, not both", None, lines.get(where)
                )
            )
            continue
        try:
            section[key] = Path(str(secret_path)).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            issues.append(
                ConfigIssue(
                    _dotted(where),
                    f"cannot read secret file: {reason}",
                    secret_path,
                    lines.get(where),
                )
            )


def _issues_from(
    exc: ValidationError, lines: dict[tuple[str | int, ...], int]
) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        shown: object = None
        if error["type"] == "extra_forbidden":
            # A mistyped key may hold a secret: its value is not repeated.
            message = "unknown key"
        else:
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] != "missing" and not isinstance(error.get("input"), dict | list):
                shown = error.get("input")
        line = _nearest_line(loc, lines)
        if "password" in _dotted(loc):
            shown = "***"
        issues.append(ConfigIssue(_dotted(loc) or "(root)", message, shown, line))
    return issues


def _nearest_line(loc: tuple[Any, ...], lines: dict[tuple[str | int, ...], int]) -> int | None:
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
