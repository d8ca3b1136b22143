"""Picking free TCP ports on the loopback interface."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing listens on right now.

    The port is found by binding to port 0 and letting the kernel choose, then
    releasing it; another process could take it before the caller binds it, which
    is unlikely on a test machine but not impossible.

    >>> port = free_port()
    >>> 1024 <= port <= 65535
    True
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
