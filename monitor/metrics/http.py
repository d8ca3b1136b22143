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

The endpoint can be served over TLS (:func:`server_ssl_context`, optionally requiring
client certificates) and behind HTTP basic auth (:func:`require_basic_auth`);
:func:`serve_metrics` starts it as ``metrics:`` in the configuration says.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import socket
import ssl
import threading
import zlib
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, choose_encoder, gzip_accepted

from monitor.config.schema import MetricsConfig
from monitor.metrics.exposition import UNDERSCORES
from monitor.metrics.streams import StreamCollector

GZIP_LEVEL = 1
HANDSHAKE_TIMEOUT_S = 10.0
"""A TLS client that has not finished its handshake by then is dropped."""
BASIC_AUTH_REALM = "monitor"

log = logging.getLogger("monitor.metrics")
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


def server_ssl_context(
    certfile: str, keyfile: str | None = None, client_cafile: str | None = None
) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) for the ``/metrics`` endpoint.

    ``certfile`` is the PEM certificate chain, ``keyfile`` its private key (``None``
    when ``certfile`` holds it). With ``client_cafile`` every client must present a
    certificate signed by one of its CAs, or the handshake fails. Raises ``OSError``
    or ``ssl.SSLError`` when a file is missing or does not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if client_cafile is not None:
        context.load_verify_locations(cafile=client_cafile)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def require_basic_auth(
    app: WSGIApp, username: str, password: str, realm: str = BASIC_AUTH_REALM
) -> WSGIApp:
    """Wrap ``app`` so that only requests with these basic-auth credentials reach it.

    Others get ``401 Unauthorized`` with a ``WWW-Authenticate`` challenge. The
    credentials are compared in constant time (``hmac.compare_digest``).

    >>> def app(environ, start_response):
    ...     start_response("200 OK", [])
    ...     return [b"ok"]
    >>> guarded = require_basic_auth(app, "prom", "pw")
    >>> def call(header):
    ...     status = []
    ...     body = guarded({"HTTP_AUTHORIZATION": header}, lambda s, h: status.append(s))
    ...     return status[0], b"".join(body)
    >>> call("Basic " + base64.b64encode(b"prom:pw").decode())
    ('200 OK', b'ok')
    >>> call("Basic " + base64.b64encode(b"prom:wrong").decode())
    ('401 Unauthorized', b'401 Unauthorized\\n')
    """
    expected = f"{username}:{password}".encode()
    challenge = f'Basic realm="{realm}", charset="UTF-8"'
    body = b"401 Unauthorized\n"

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if hmac.compare_digest(_basic_credentials(environ.get("HTTP_AUTHORIZATION", "")), expected):
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [
                ("WWW-Authenticate", challenge),
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]

    return guarded


def _basic_credentials(header: str) -> bytes:
    """The decoded ``user:password`` of a basic ``Authorization`` header, else ``b""``."""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return b""
    try:
        return base64.b64decode(token.strip().encode("latin-1"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        return b""


class _QuietHandler(WSGIRequestHandler):
    """Logs no request (as prometheus-client's server); finishes a TLS handshake first."""

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            # Done here, in the request's thread: a slow or failing client never
            # holds up the thread that accepts connections.
            self.request.settimeout(HANDSHAKE_TIMEOUT_S)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        if isinstance(self.request, ssl.SSLSocket):
            environ["HTTPS"] = "on"
            environ["wsgi.url_scheme"] = "https"
        return environ

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _MetricsServer(ThreadingWSGIServer):
    """prometheus-client's threaded WSGI server, optionally wrapping connections in TLS."""

    ssl_context: ssl.SSLContext | None = None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False
            )
        return sock, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Failed handshakes (no or wrong client certificate) and dropped clients:
        # the client sees the failure; nothing is printed to stderr.
        log.debug("metrics request from %s failed", client_address, exc_info=True)


def start_metrics_server(
    port: int,
    addr: str,
    registry: CollectorRegistry,
    streams: StreamCollector | None = None,
    *,
    ssl_context: ssl.SSLContext | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> tuple[WSGIServer, threading.Thread]:
    """Serve :func:`make_metrics_app` on ``addr:port`` from a daemon thread.

    prometheus-client's ``start_http_server`` with the app swapped: its threaded
    WSGI server, the address family chosen from ``addr`` (IPv4 or IPv6). With
    ``ssl_context`` (:func:`server_ssl_context`) it serves HTTPS, each handshake
    done in the request's thread; with ``basic_auth`` (user, password) every
    request must carry those credentials (:func:`require_basic_auth`). Stop it
    with ``server.shutdown(); server.server_close()``.
    """

    class Server(_MetricsServer):
        pass

    family, *_, sockaddr = socket.getaddrinfo(
        addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    Server.address_family = family
    Server.ssl_context = ssl_context
    app = make_metrics_app(registry, streams)
    if basic_auth is not None:
        app = require_basic_auth(app, *basic_auth)
    server = make_server(str(sockaddr[0]), port, app, Server, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True)
    thread.start()
    return server, thread


def serve_metrics(
    config: MetricsConfig, registry: CollectorRegistry, streams: StreamCollector | None = None
) -> tuple[WSGIServer, threading.Thread, str]:
    """Start the endpoint ``config`` describes (address, port, TLS, basic auth).

    Returns the server, its thread and the endpoint's URL (for the log; it holds no
    secret). ``config.port`` must not be 0.
    """
    context = None
    if config.tls_certfile is not None:
        context = server_ssl_context(
            config.tls_certfile, config.tls_keyfile, config.tls_client_cafile
        )
    credentials = None
    if config.basic_auth_username is not None and config.basic_auth_password is not None:
        credentials = (config.basic_auth_username, config.basic_auth_password)
    server, thread = start_metrics_server(
        config.port, config.address, registry, streams, ssl_context=context, basic_auth=credentials
    )
    host = f"[{config.address}]" if ":" in config.address else config.address
    scheme = "https" if context is not None else "http"
    return server, thread, f"{scheme}://{host}:{config.port}/metrics"
