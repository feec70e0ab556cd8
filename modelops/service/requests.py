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
    generation_timeout_seconds: float = 60.0  # POST /generate answers 504 when its responses take longer

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
        if not self.generation_timeout_seconds > 0:
            raise ServingConfigError(f"generation_timeout_seconds must be positive, got "
                                     f"{self.generation_timeout_seconds}")


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
    return _parse_inputs(body, config, "text", "texts")[0]


def parse_prompts(body: bytes, config: ServingConfig, max_new_tokens: int) -> tuple[list[str], int]:
    """`{"prompt": str}` or `{"prompts": [str, ...]}`, optionally with `"max_new_tokens"` (an integer from 1 to the
    served `max_new_tokens`) -> the prompts and their response limit, or RequestError."""
    prompts, payload = _parse_inputs(body, config, "prompt", "prompts", {"max_new_tokens"})
    limit = payload.get("max_new_tokens", max_new_tokens)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_new_tokens:
        raise RequestError(422, f"'max_new_tokens' must be an integer from 1 to {max_new_tokens}, got {limit!r}")
    return prompts, limit


def _parse_inputs(body: bytes, config: ServingConfig, one: str, many: str,
                  options: frozenset[str] | set[str] = frozenset()) -> tuple[list[str], dict]:
    """`{one: str}` or `{many: [str, ...]}` (plus any of `options`) -> the inputs and the payload, or RequestError."""
    try:
        payload = json.loads(body)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise RequestError(400, f"Request body is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise RequestError(422, f'Expected a JSON object {{"{one}": "..."}} or {{"{many}": ["...", ...]}}')
    unknown = sorted(set(payload) - {one, many, *options})
    if unknown:
        raise RequestError(422, f"Unknown field(s) {unknown}; send only '{one}' or '{many}'"
                                + "".join(f" and '{o}'" for o in sorted(options)))
    if (one in payload) == (many in payload):
        raise RequestError(422, f"Send exactly one of '{one}' (a string) or '{many}' (a list of strings)")
    if one in payload:
        inputs = [payload[one]]
    else:
        inputs = payload[many]
        if not isinstance(inputs, list):
            raise RequestError(422, f"'{many}' must be a list of strings")
        if not inputs:
            raise RequestError(422, f"'{many}' is empty; send at least one {one}")
        if len(inputs) > config.max_batch_size:
            raise RequestError(413, f"{len(inputs)} {many} exceed the limit of {config.max_batch_size} per request")
    for i, text in enumerate(inputs):
        _check_text(text, f"{one} #{i}", config.max_text_chars)
    return inputs, payload


def _check_text(text: object, where: str, max_chars: int) -> None:
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
