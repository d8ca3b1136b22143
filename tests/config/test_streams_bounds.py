"""The idle-eviction settings of the ``streams`` section."""

from __future__ import annotations

import pydantic
import pytest

from monitor.config import MonitorConfig
from monitor.config.schema import StreamsConfig


def test_idle_eviction_defaults():
    streams = MonitorConfig().streams
    assert streams.idle_ttl_seconds == 86_400.0
    assert streams.eviction_interval_seconds == 60.0
    assert streams.max_streams == 100_000


@pytest.mark.parametrize("key", ["idle_ttl_seconds", "eviction_interval_seconds"])
def test_idle_eviction_settings_are_not_negative(key):
    assert getattr(StreamsConfig.model_validate({key: 0.0}), key) == 0.0
    with pytest.raises(pydantic.ValidationError, match=key):
        StreamsConfig.model_validate({key: -1.0})
