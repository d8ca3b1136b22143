"""Errors raised while setting up Kafka: the embedded broker and topic administration."""

from monitor.exceptions import MonitorError


class KafkaSetupError(MonitorError):
    """Kafka could not be set up: a broker is unreachable or a topic cannot be created.

    >>> isinstance(KafkaSetupError("no broker at 127.0.0.1:9092"), MonitorError)
    True
    """


class BrokerError(KafkaSetupError):
    """The embedded broker failed to start, or died.

    The message carries the tail of the broker's log when one is available.

    >>> issubclass(BrokerError, KafkaSetupError)
    True
    """


class KafkaClientError(MonitorError):
    """A Kafka client call failed for good: a fatal consumer error, a failed seek, or a
    message whose delivery failed.

    >>> isinstance(KafkaClientError("commit failed: t/0: REBALANCE_IN_PROGRESS"), MonitorError)
    True
    """
