"""The ``/metrics`` endpoint: prometheus-client's server and encoders, per-stream text in bulk.

A GET is answered like prometheus-client's own WSGI app: the format (Prometheus
text or OpenMetrics, and the name escaping) is negotiated from ``Accept`` by
prometheus-client, the registry is encoded by prometheus-client. Only the
per-stream families of a :class:`StreamCollector` are written differently: the
registry's encoder gets the collector's aggregates, and the per-stream families
follow as text written straight from the arrays (:meth:`StreamScrape.render`).
Everything else (OPTIONS, other methods, ``/favicon.ico``, ``?name[]=`` filters)
is passed to prometheus-client's app unchanged.

A gzip response (``Accept-Encoding: gzip``, as Prometheus sends) is compressed at
level 1: on this text it is about as small as level 9 and several times faster.
"""

from __future__ import annotations

import socket
import threading
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted

from monitor.metrics.exposition import UNDERSCORES
from monitor.metrics.streams import StreamCollector

GZIP_LEVEL = 1
_OPENMETRICS_EOF = b"# EOF\n"

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def negotiated_escaping(content_type: str) -> str:
    """The name escaping prometheus-client chose, read from its ``Content-Type``.

    >>> negotiated_escaping("text/plain; version=0.0.4; charset=utf-8")
    'underscores'
    >>> negotiated_escaping("text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8")
    'allow-utf-8'
    """
    for token in content_type.split(";"):
        key, _, value = token.strip().partition("=")
        if key == "escaping" and value:
            return value
    return UNDERSCORES


def make_metrics_app(
    registry: CollectorRegistry,
    streams: StreamCollector | None = None,
    disable_compression: bool = False,
) -> WSGIApp:
    """A WSGI app serving ``registry``, with ``streams``'s per-stream families in bulk.

    ``streams`` should be registered in ``registry`` (its aggregates come from
    there); without it the app is prometheus-client's ``make_wsgi_app``.
    """
    standard: WSGIApp = make_wsgi_app(registry, disable_compression)
    if streams is None:
        return standard

    def metrics_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or environ.get("PATH_INFO") == "/favicon.ico"
            or "name[]" in parse_qs(environ.get("QUERY_STRING", ""))
        ):
            return list(standard(environ, start_response))
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        with streams.deferred(negotiated_escaping(content_type)) as scrape:
            head = encoder(registry)
        if openmetrics:
            head = head.removesuffix(_OPENMETRICS_EOF)
        chunks = [head, *scrape.render(openmetrics)]
        if openmetrics:
            chunks.append(_OPENMETRICS_EOF)
        headers = [("Content-Type", content_type)]
        if not disable_compression and gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING", "")):
            gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
            chunks = [gzip.compress(chunk) for chunk in chunks]
            chunks.append(gzip.flush())
            headers.append(("Content-Encoding", "gzip"))
        chunks = [chunk for chunk in chunks if chunk]
        headers.append(("Content-Length", str(sum(map(len, chunks)))))
        start_response("200 OK", headers)
        return chunks

    return metrics_app


class _QuietHandler(WSGIRequestHandler):
    """Logs no request (as prometheus-client's server)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_metrics_server(
    port: int,
    addr: str,
    registry: CollectorRegistry,
    streams: StreamCollector | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve :func:`make_metrics_app` on ``addr:port`` from a daemon thread.

    prometheus-client's ``start_http_server`` with the app swapped: its threaded
    WSGI server, the address family chosen from ``addr`` (IPv4 or IPv6). Stop it
    with ``server.shutdown(); server.server_close()``.
    """

    class Server(ThreadingWSGIServer):
        pass

    family, *_, sockaddr = socket.getaddrinfo(
        addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    Server.address_family = family
    app = make_metrics_app(registry, streams)
    server = make_server(str(sockaddr[0]), port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server, thread
