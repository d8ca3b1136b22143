"""Errors raised while loading a configuration file."""

from __future__ import annotations

from dataclasses import dataclass

from monitor.exceptions import MonitorError


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file: where, what arrived, what was expected."""

    path: str
    message: str
    value: object = None
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line else source
        shown = "" if self.value is None else f" (got {self.value!r})"
        return f"{where}: {self.path}: {self.message}{shown}"


class ConfigError(MonitorError):
    """A configuration that cannot be used; carries every issue found, not just the first.

    >>> err = ConfigError("x.yaml", [ConfigIssue("kafka.format", "expected one of ...", "avro", 4)])
    >>> print(err)
    x.yaml:4: kafka.format: expected one of ... (got 'avro')
    """

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        super().__init__("\n".join(issue.render(source) for issue in issues))
