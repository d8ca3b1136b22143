"""Typed, strict configuration loaded from YAML."""

from monitor.config.exceptions import ConfigError, ConfigIssue
from monitor.config.loader import BOOTSTRAP_ENV, load_config, load_config_text
from monitor.config.schema import (
    DetectorConfig,
    KafkaConfig,
    MonitorConfig,
    StreamOverride,
)

__all__ = [
    "BOOTSTRAP_ENV",
    "ConfigError",
    "ConfigIssue",
    "DetectorConfig",
    "KafkaConfig",
    "MonitorConfig",
    "StreamOverride",
    "load_config",
    "load_config_text",
]
