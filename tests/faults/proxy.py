"""A loopback TCP forwarder that a test can cut and restore: a network outage on demand.

``TcpProxy`` listens on a free loopback port and forwards every connection to a
target. :meth:`TcpProxy.drop_all` closes every open connection and, until
:meth:`TcpProxy.restore`, closes each new one as soon as it is accepted, so a
client sees its connections reset and its reconnects fail, exactly as when the
server is unreachable. Threads only; it stops with :meth:`TcpProxy.stop` (or as a
context manager).
"""

from __future__ import annotations

import socket
import struct
import threading
from types import TracebackType

from monitor.kafka.ports import free_port

_CHUNK = 65_536


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``, with a switch to cut it.

    Client-to-server bytes are forwarded as Kafka frames (a 4-byte big-endian size,
    then the request), so single requests can be refused; server-to-client bytes
    as they come.

    Parameters
    ----------
    target_host, target_port
        Where connections are forwarded.
    port
        The port to listen on (loopback); a free one when ``None``.

    Examples
    --------
    >>> import socket, threading
    >>> server = socket.create_server(("127.0.0.1", 0))
    >>> def echo():
    ...     conn, _ = server.accept()
    ...     conn.sendall(conn.recv(100).upper())
    ...     conn.close()
    >>> _ = threading.Thread(target=echo, daemon=True).start()
    >>> with TcpProxy("127.0.0.1", server.getsockname()[1]) as proxy:
    ...     client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
    ...     client.sendall(b"\\x00\\x00\\x00\\x04ping")  # one frame: 4-byte size, then the bytes
    ...     client.recv(100)
    b'\\x00\\x00\\x00\\x04PING'
    >>> client.close(); server.close()
    """

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = free_port() if port is None else port
        self._dropping = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._refused_requests: tuple[int, bytes | None] | None = None
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.accepted = 0
        """Connections accepted so far (forwarded or dropped)."""
        self.refused = 0
        """Connections closed on arrival while dropping."""

    @property
    def address(self) -> str:
        """``127.0.0.1:port``, ready to use as a bootstrap server or advertised listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def dropping(self) -> bool:
        """Whether connections are being dropped."""
        return self._dropping.is_set()

    def start(self) -> TcpProxy:
        """Listen and forward in a background thread; return ``self``."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="tcp-proxy", daemon=True)
        self._thread.start()
        return self

    def drop_all(self) -> None:
        """Close every open connection, and every new one on arrival, until :meth:`restore`."""
        self._dropping.set()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _close(sock, reset=True)

    def refuse_requests(self, api_key: int, client_id: str | None = None) -> None:
        """Reset every connection that sends a Kafka request ``api_key``, until :meth:`restore`.

        Only requests from ``client_id`` when given (every Kafka request header names
        its client). ``refuse_requests(0, "monitor")`` makes every produce request of
        the client ``monitor`` fail while its other requests, and other clients, go
        through: an unwritable topic, seen from that client.
        """
        encoded = None if client_id is None else client_id.encode()
        self._refused_requests = (api_key, encoded)

    def restore(self) -> None:
        """Forward new connections, and every request, again."""
        self._refused_requests = None
        self._dropping.clear()

    def stop(self) -> None:
        """Stop listening and close every connection. Calling it again does nothing."""
        self._closed.set()
        self.drop_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            if self._dropping.is_set():
                self.refused += 1
                _close(client, reset=True)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client, reset=True)
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                if self._dropping.is_set():
                    _close(client, reset=True)
                    _close(upstream, reset=True)
                    continue
                self._sockets.update((client, upstream))
            for source, sink, requests in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(
                    target=self._pump,
                    args=(source, sink, requests),
                    name="tcp-proxy-pump",
                    daemon=True,
                ).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        """Copy ``source`` to ``sink``; Kafka requests (client to server) frame by frame."""
        pending = b""
        try:
            while True:
                data = source.recv(_CHUNK)
                if not data:
                    break
                if not requests:
                    sink.sendall(data)
                    continue
                pending += data
                while len(pending) >= 4:
                    end = 4 + int.from_bytes(pending[:4], "big")
                    if len(pending) < end:
                        break
                    frame, pending = pending[:end], pending[end:]
                    if self._refused(frame):
                        _close(source, reset=True)
                        _close(sink, reset=True)
                        return
                    sink.sendall(frame)
        except OSError:
            pass
        finally:
            with self._lock:
                self._sockets.discard(source)
                self._sockets.discard(sink)
            _close(source)
            _close(sink)

    def _refused(self, frame: bytes) -> bool:
        """Whether the request ``frame`` (size, api_key, api_version, correlation_id,
        client_id) is one :meth:`refuse_requests` refuses."""
        refused = self._refused_requests
        if refused is None or len(frame) < 14:
            return False
        api_key, client_id = refused
        if int.from_bytes(frame[4:6], "big", signed=True) != api_key:
            return False
        if client_id is None:
            return True
        size = int.from_bytes(frame[12:14], "big", signed=True)
        return frame[14 : 14 + size] == client_id if size >= 0 else False


def _close(sock: socket.socket, reset: bool = False) -> None:
    """Close ``sock``; with ``reset``, abortively (RST) so the peer sees the cut at once."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass
