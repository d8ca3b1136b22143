"""monitor: a streaming online anomaly monitor for metric streams on Kafka."""

__version__ = "0.1.0"
