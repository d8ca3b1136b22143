"""Rebalance listeners that may call the consumer, on every client library.

kafka-python 3 calls a rebalance listener on its IO thread, and there a blocking
consumer call (``commit``, ``committed``, ...) fails with "Cannot block on net.run()
from the IO thread itself". The daemon's listener commits revoked partitions, so for a
kafka-python consumer :func:`callable_from_listener` wraps it in an
:class:`~kafka.consumer.subscription_state.AsyncConsumerRebalanceListener` that runs
it on a thread of its own and awaits it: the IO thread keeps serving the consumer's
calls meanwhile. kafka-python runs rebalances inside ``poll`` and ``close``, so the
thread that called those is waiting, as with a listener called inline. Other clients
(confluent-kafka) call listeners on the polling thread; theirs is returned unchanged.
"""

from __future__ import annotations

import threading
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import AsyncConsumerRebalanceListener
from kafka.future import Future


def callable_from_listener(listener: Any, consumer: Any) -> Any:
    """``listener``, wrapped for ``consumer`` so that it may call the consumer.

    >>> from kafka import ConsumerRebalanceListener
    >>> class Quiet(ConsumerRebalanceListener):
    ...     def on_partitions_revoked(self, revoked): pass
    ...     def on_partitions_assigned(self, assigned): pass
    >>> quiet = Quiet()
    >>> callable_from_listener(quiet, consumer=object()) is quiet
    True
    """
    if isinstance(consumer, KafkaConsumer):
        return _OffTheIOThread(listener, consumer)
    return listener


class _OffTheIOThread(AsyncConsumerRebalanceListener):
    """Runs a synchronous listener on a thread of its own; the IO thread awaits it."""

    def __init__(self, listener: Any, consumer: KafkaConsumer) -> None:
        self.listener = listener
        self.manager = consumer._manager  # schedules on the IO thread, from any thread

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self._run(self.listener.on_partitions_revoked, revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self._run(self.listener.on_partitions_assigned, assigned)

    async def on_partitions_lost(self, lost: Any) -> None:
        handler = getattr(self.listener, "on_partitions_lost", None)
        await self._run(handler or self.listener.on_partitions_revoked, lost)

    def _run(self, callback: Any, partitions: Any) -> Future:
        done = Future()
        manager = self.manager
        partitions = set(partitions)

        def work() -> None:
            try:
                callback(partitions)
            except BaseException as exc:  # noqa: BLE001 - kafka-python logs it
                manager.call_soon(done.failure, exc)
            else:
                manager.call_soon(done.success, None)

        threading.Thread(target=work, name="rebalance-listener", daemon=True).start()
        return done
