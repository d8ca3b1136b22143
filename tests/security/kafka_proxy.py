"""A loopback proxy that adds TLS and SASL in front of a plaintext Kafka broker.

The embedded tansu broker accepts ``--cert``/``--authentication`` but its TLS
listener does not handshake, and its SASL users live in its storage, which the
in-memory engine cannot be given before authentication is required. So the tests
terminate TLS and SASL here, with the standard library, and relay bytes unchanged
to a broker that advertises this proxy's own address (no rewriting).

Per connection: an optional TLS handshake (``ssl_context``); then, when ``users``
is set, the Kafka SASL exchange is answered here. ``ApiVersions`` requests are
relayed to the broker, ``SaslHandshake`` (v0-1) and ``SaslAuthenticate`` (v0-2)
are answered with :mod:`tests.security.scram`, any other request before
authentication closes the connection, as a Kafka broker does. After that, bytes
flow both ways untouched.
"""

from __future__ import annotations

import select
import socket
import ssl
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.security.scram import AuthenticationFailed, mechanism_server

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36
UNSUPPORTED_SASL_MECHANISM, SASL_AUTHENTICATION_FAILED = 33, 58


@dataclass
class ProxyLog:
    """What the proxy saw: handshakes and authentications, good and bad."""

    tls_failures: list[str] = field(default_factory=list)
    authenticated: list[tuple[str, str]] = field(default_factory=list)
    """(mechanism, user) of each successful SASL authentication."""
    rejected: list[tuple[str, str]] = field(default_factory=list)
    """(mechanism, reason) of each failed SASL authentication."""


class KafkaSecurityProxy:
    """Listen on ``host:port``; relay to ``upstream`` after TLS and/or SASL.

    ``ssl_context`` (a server context) and ``users`` (mechanism -> {user: password})
    may be changed between connections; new connections use the current values.
    """

    def __init__(self, upstream: tuple[str, int], host: str, port: int) -> None:
        self.upstream = upstream
        self.ssl_context: ssl.SSLContext | None = None
        self.users: Mapping[str, Mapping[str, str]] | None = None
        self.log = ProxyLog()
        self._listener = socket.create_server((host, port))
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="kafka-proxy", daemon=True)
        self._thread.start()

    def configure(
        self,
        ssl_context: ssl.SSLContext | None = None,
        users: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        """Set what new connections must go through, drop current ones, clear the log."""
        self.ssl_context, self.users = ssl_context, users
        self.log = ProxyLog()
        self._close_connections()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()
        self._close_connections()
        self._thread.join(timeout=5)

    def _close_connections(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for sock in connections:
            _close(sock)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.add(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        context, users, log = self.ssl_context, self.users, self.log
        upstream: socket.socket | None = None
        try:
            if context is not None:
                client.settimeout(10)
                try:
                    client = context.wrap_socket(client, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.tls_failures.append(str(exc))
                    return
                client.settimeout(None)
                self._track(client)
            upstream = socket.create_connection(self.upstream)
            self._track(upstream)
            if users is not None and not _authenticate(client, upstream, users, log):
                _linger(client)
                return
            _relay(client, upstream)
        except (OSError, ValueError):
            pass
        finally:
            _close(client)
            if upstream is not None:
                _close(upstream)


def _authenticate(
    client: socket.socket,
    upstream: socket.socket,
    users: Mapping[str, Mapping[str, str]],
    log: ProxyLog,
) -> bool:
    mechanism: str | None = None
    server = None
    while True:
        frame = _read_frame(client)
        if frame is None:
            return False
        api_key, version, correlation_id = struct.unpack_from(">hhi", frame)
        if api_key == API_VERSIONS:
            upstream.sendall(struct.pack(">i", len(frame)) + frame)
            answer = _read_frame(upstream)
            if answer is None:
                return False
            client.sendall(struct.pack(">i", len(answer)) + answer)
        elif api_key == SASL_HANDSHAKE:
            requested = _string(frame, _body_offset(frame, flexible=False))
            known = sorted(users)
            error = 0 if requested in users else UNSUPPORTED_SASL_MECHANISM
            body = struct.pack(">hi", error, len(known))
            for name in known:
                body += struct.pack(">h", len(name)) + name.encode()
            _send(client, struct.pack(">i", correlation_id) + body)
            if error:
                return False
            mechanism = requested
            server = mechanism_server(requested, users[requested])
        elif api_key == SASL_AUTHENTICATE and server is not None and mechanism is not None:
            flexible = version >= 2
            token = _auth_bytes(frame, _body_offset(frame, flexible), flexible)
            try:
                reply, error, message = server.step(token), 0, None
            except AuthenticationFailed as exc:
                log.rejected.append((mechanism, str(exc)))
                reply, error = b"", SASL_AUTHENTICATION_FAILED
                message = (
                    f"Authentication failed: invalid credentials with SASL mechanism {mechanism}"
                )
            _send(client, _authenticate_response(correlation_id, version, error, message, reply))
            if error:
                return False
            if server.done:
                log.authenticated.append((mechanism, server.user or ""))
                return True
        else:
            return False  # anything else before authentication: drop the connection


def _relay(client: socket.socket, upstream: socket.socket) -> None:
    peers = {client: upstream, upstream: client}
    while True:
        readable, _, _ = select.select(list(peers), [], [])
        for sock in readable:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)
                if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
                    break


def _linger(client: socket.socket) -> None:
    """Let the client read a refusal and close first (as a broker delays the close):
    closing with unread input would reset the connection and could drop the answer."""
    client.settimeout(5)
    try:
        while client.recv(4096):
            pass
    except OSError:
        pass


def _read_frame(sock: socket.socket) -> bytes | None:
    head = _read_exactly(sock, 4)
    if head is None:
        return None
    (size,) = struct.unpack(">i", head)
    return _read_exactly(sock, size)


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = sock.recv(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">i", len(payload)) + payload)


def _body_offset(frame: bytes, flexible: bool) -> int:
    """Skip the request header: key, version, correlation id, client id, tags (flexible)."""
    (client_id_length,) = struct.unpack_from(">h", frame, 8)
    offset = 10 + max(client_id_length, 0)
    if flexible:
        count, offset = _uvarint(frame, offset)
        for _ in range(count):
            _tag, offset = _uvarint(frame, offset)
            size, offset = _uvarint(frame, offset)
            offset += size
    return offset


def _string(frame: bytes, offset: int) -> str:
    (length,) = struct.unpack_from(">h", frame, offset)
    return frame[offset + 2 : offset + 2 + length].decode()


def _auth_bytes(frame: bytes, offset: int, flexible: bool) -> bytes:
    if flexible:
        length, offset = _uvarint(frame, offset)
        return frame[offset : offset + length - 1]
    (length,) = struct.unpack_from(">i", frame, offset)
    return frame[offset + 4 : offset + 4 + length]


def _authenticate_response(
    correlation_id: int, version: int, error: int, message: str | None, auth_bytes: bytes
) -> bytes:
    encoded = message.encode() if message is not None else None
    if version >= 2:
        out = struct.pack(">ib", correlation_id, 0) + struct.pack(">h", error)
        out += _to_uvarint(0 if encoded is None else len(encoded) + 1) + (encoded or b"")
        out += _to_uvarint(len(auth_bytes) + 1) + auth_bytes
        return out + struct.pack(">q", 0) + b"\x00"
    out = struct.pack(">ih", correlation_id, error)
    out += struct.pack(">h", -1) if encoded is None else struct.pack(">h", len(encoded)) + encoded
    out += struct.pack(">i", len(auth_bytes)) + auth_bytes
    return out + (struct.pack(">q", 0) if version >= 1 else b"")


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
        shift += 7


def _to_uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
