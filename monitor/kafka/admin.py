"""Topic administration with kafka-python's admin client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from monitor.kafka.exceptions import KafkaSetupError

DEFAULT_BOOTSTRAP_TIMEOUT_MS = 10_000


def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    **client_kwargs: Any,
) -> list[str]:
    """Create the topics of ``topics`` (name -> partition count) that do not exist yet.

    Existing topics are left alone, whatever their partition count, and a topic that
    another client creates at the same moment is not an error. Returns the names this
    call created, in the order given. ``client_kwargs`` go to
    :class:`kafka.KafkaAdminClient` (security settings, ``client_id``, timeouts); unless
    given, ``bootstrap_timeout_ms`` is 10 s. Raises
    :class:`~monitor.kafka.exceptions.KafkaSetupError` when the cluster cannot be
    reached or refuses a topic.

    >>> ensure_topics("127.0.0.1:9092", {})  # nothing asked, nothing to connect for
    []
    >>> ensure_topics("127.0.0.1:9092", {"metrics": 0})
    Traceback (most recent call last):
    ...
    monitor.kafka.exceptions.KafkaSetupError: topic 'metrics': partition count must be >= 1, got 0
    """
    for name, partitions in topics.items():
        if not name:
            raise KafkaSetupError("topic names must not be empty")
        if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
            raise KafkaSetupError(
                f"topic {name!r}: partition count must be >= 1, got {partitions!r}"
            )
    if replication_factor < 1:
        raise KafkaSetupError(f"replication factor must be >= 1, got {replication_factor}")
    if not topics:
        return []

    client_kwargs.setdefault("bootstrap_timeout_ms", DEFAULT_BOOTSTRAP_TIMEOUT_MS)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_kwargs)
    except KafkaError as exc:
        raise KafkaSetupError(
            f"cannot connect to Kafka at {bootstrap_servers} to create topics "
            f"{sorted(topics)}: {exc}"
        ) from exc
    try:
        return _create_missing(admin, bootstrap_servers, topics, replication_factor)
    finally:
        admin.close()


def _create_missing(
    admin: KafkaAdminClient,
    bootstrap_servers: str,
    topics: Mapping[str, int],
    replication_factor: int,
) -> list[str]:
    try:
        existing = set(admin.list_topics())
    except KafkaError as exc:
        raise KafkaSetupError(f"cannot list the topics of {bootstrap_servers}: {exc}") from exc
    created: list[str] = []
    for name, partitions in topics.items():
        if name in existing:
            continue
        new_topic = NewTopic(name, partitions, replication_factor)
        try:
            admin.create_topics([new_topic])
        except TopicAlreadyExistsError:
            continue
        except KafkaError as exc:
            raise KafkaSetupError(
                f"cannot create topic {name!r} ({partitions} partitions, replication "
                f"{replication_factor}) on {bootstrap_servers}: {exc}"
            ) from exc
        created.append(name)
    return created
