"""What the service accepts: its configuration (limits, where it listens, authentication) and request parsing into
validated texts, or a RequestError with the HTTP status and a message for the client."""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.requests import Request

from modelops.core.defaults import LOOPBACK, LOOPBACK_HOSTS, MAX_TEXT_CHARS


class ServingConfigError(ValueError):
    """A ServingConfig value that would make the service unsafe or unusable."""


@dataclass(frozen=True)
class ServingConfig:
    """Where to listen, request limits, micro-batching and reload timing, optional bearer token, PII redaction.

    Listening beyond loopback requires a bearer token; limits must be positive.
    """

    host: str = LOOPBACK
    port: int = 8765
    max_batch_size: int = 64  # max texts in one request
    max_text_chars: int = MAX_TEXT_CHARS
    max_body_bytes: int = 1_000_000
    micro_batch_max: int = 64  # max texts the batcher sends to the model at once
    micro_batch_wait_ms: float = 5.0  # how long the batcher waits to fill a micro-batch
    reload_poll_seconds: float = 5.0
    bearer_token: str | None = None  # when set, /predict and /model need `Authorization: Bearer <token>`
    redact_traffic: bool = False  # replace e-mails, IBANs, card and phone numbers before captured texts touch disk

    def __post_init__(self) -> None:
        if self.bearer_token is not None and not self.bearer_token.strip():
            raise ServingConfigError("bearer_token is empty; set a non-empty token or None for no authentication")
        if self.host not in LOOPBACK_HOSTS and self.bearer_token is None:
            raise ServingConfigError(f"Refusing to listen on {self.host!r} (beyond loopback) without a bearer token; "
                                     "set bearer_token (modelops serve --token) or listen on 127.0.0.1")
        limits = {"max_batch_size": self.max_batch_size, "max_text_chars": self.max_text_chars,
                  "max_body_bytes": self.max_body_bytes, "micro_batch_max": self.micro_batch_max}
        not_positive = sorted(name for name, value in limits.items() if value < 1)
        if not_positive:
            raise ServingConfigError(f"{', '.join(not_positive)} must be at least 1")


class RequestError(Exception):
    """A request rejected before prediction: HTTP status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) a declared or actual size over `limit` without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise RequestError(400, f"Invalid Content-Length header {declared!r}") from None
        if size > limit:
            raise RequestError(413, f"Request body of {size} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise RequestError(413, f"Request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_texts(body: bytes, config: ServingConfig) -> list[str]:
    """`{"text": str}` or `{"texts": [str, ...]}` -> the list of texts, or RequestError."""
    try:
        payload = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise RequestError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, 'Expected a JSON object {"text": "..."} or {"texts": ["...", ...]}')
    unknown = sorted(set(payload) - {"text", "texts"})
    if unknown:
        raise RequestError(422, f"Unknown field(s) {unknown}; send only 'text' or 'texts'")
    if ("text" in payload) == ("texts" in payload):
        raise RequestError(422, "Send exactly one of 'text' (a string) or 'texts' (a list of strings)")
    if "text" in payload:
        texts = [payload["text"]]
    else:
        texts = payload["texts"]
        if not isinstance(texts, list):
            raise RequestError(422, "'texts' must be a list of strings")
        if not texts:
            raise RequestError(422, "'texts' is empty; send at least one text")
        if len(texts) > config.max_batch_size:
            raise RequestError(413, f"{len(texts)} texts exceed the limit of {config.max_batch_size} per request")
    for i, text in enumerate(texts):
        _check_text(text, i, config.max_text_chars)
    return texts


def _check_text(text: object, index: int, max_chars: int) -> None:
    where = f"text #{index}"
    if not isinstance(text, str):
        raise RequestError(422, f"{where} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise RequestError(422, f"{where} is empty")
    if len(text) > max_chars:
        raise RequestError(413, f"{where} has {len(text)} characters, over the limit of {max_chars}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise RequestError(422, f"{where} is not valid Unicode (lone surrogate)") from None
