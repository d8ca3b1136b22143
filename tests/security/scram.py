"""The server side of SASL PLAIN (RFC 4616) and SCRAM-SHA-256/512 (RFC 5802, RFC 7677).

Enough for a test proxy to authenticate real Kafka clients: each mechanism object
takes the client's messages in turn and answers them, raising
:class:`AuthenticationFailed` when the credentials are wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Mapping

ITERATIONS = 4096
_HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}


class AuthenticationFailed(Exception):
    """The client's credentials were wrong or its messages malformed."""


class PlainServer:
    """SASL PLAIN: one message ``authzid NUL user NUL password``."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self.user: str | None = None
        self.done = False

    def step(self, message: bytes) -> bytes:
        try:
            _authzid, user, password = message.decode("utf-8").split("\0")
        except ValueError as exc:
            raise AuthenticationFailed("malformed PLAIN message") from exc
        expected = self._users.get(user)
        if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
            raise AuthenticationFailed(f"invalid credentials for user {user!r}")
        self.user, self.done = user, True
        return b""


class ScramServer:
    """SCRAM-SHA-256 or SCRAM-SHA-512 without channel binding: two client messages."""

    def __init__(self, mechanism: str, users: Mapping[str, str]) -> None:
        self._hash = _HASHES[mechanism]
        self._users = users
        self._salt = secrets.token_bytes(16)
        self._first_bare = ""
        self._server_first = ""
        self._nonce = ""
        self._gs2 = ""
        self.user: str | None = None
        self.done = False

    def step(self, message: bytes) -> bytes:
        text = message.decode("utf-8", errors="replace")
        if not self._server_first:
            return self._first(text)
        return self._final(text)

    def _first(self, text: str) -> bytes:
        parts = text.split(",", 2)
        if len(parts) != 3 or parts[0] not in ("n", "y"):
            raise AuthenticationFailed("malformed client-first message")
        self._gs2 = f"{parts[0]},{parts[1]},"
        self._first_bare = parts[2]
        attributes = _attributes(self._first_bare)
        self.user = attributes.get("n", "").replace("=2C", ",").replace("=3D", "=")
        self._nonce = attributes.get("r", "") + secrets.token_urlsafe(18)
        salt = base64.b64encode(self._salt).decode()
        self._server_first = f"r={self._nonce},s={salt},i={ITERATIONS}"
        return self._server_first.encode()

    def _final(self, text: str) -> bytes:
        without_proof, _, proof_part = text.rpartition(",p=")
        attributes = _attributes(without_proof)
        binding = base64.b64encode(self._gs2.encode()).decode()
        if attributes.get("c") != binding or attributes.get("r") != self._nonce:
            raise AuthenticationFailed("client-final message does not match the exchange")
        password = self._users.get(self.user or "")
        # An unknown user goes through the same computation with a random password.
        salted = hashlib.pbkdf2_hmac(
            self._hash,
            (password if password is not None else secrets.token_hex(16)).encode(),
            self._salt,
            ITERATIONS,
        )
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self._hash, client_key).digest()
        auth_message = f"{self._first_bare},{self._server_first},{without_proof}".encode()
        signature = self._hmac(stored_key, auth_message)
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError as exc:
            raise AuthenticationFailed("malformed client proof") from exc
        candidate = bytes(a ^ b for a, b in zip(proof, signature, strict=False))
        if (
            password is None
            or len(proof) != len(signature)
            or not hmac.compare_digest(hashlib.new(self._hash, candidate).digest(), stored_key)
        ):
            raise AuthenticationFailed(f"invalid credentials for user {self.user!r}")
        server_signature = self._hmac(self._hmac(salted, b"Server Key"), auth_message)
        self.done = True
        return b"v=" + base64.b64encode(server_signature)

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self._hash).digest()


def mechanism_server(mechanism: str, users: Mapping[str, str]) -> PlainServer | ScramServer:
    """The server side of ``mechanism`` checking against ``users`` (name -> password)."""
    if mechanism == "PLAIN":
        return PlainServer(users)
    return ScramServer(mechanism, users)


def _attributes(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {key: value for key, value in pairs}
