"""The FastAPI side shared by the deployments: JSON errors, a body size limit, an optional API key.

Every error a client can cause is a 4xx with OpenAI's error shape
(`{"error": {"message", "type", "param", "code"}}`); nothing a client sends names a file or code.
"""

from __future__ import annotations

import hmac
import os

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_KEY_ENV = "RECURSA_API_KEY"
MAX_BODY_BYTES = 256 * 1024
# One deployment replica per process: the replica's constructor sets these with `configure_guard`.
_guard: dict = {"api_key": None, "max_bytes": MAX_BODY_BYTES}


def configure_guard(api_key: str | None, max_body_bytes: int) -> None:
    """Require `Authorization: Bearer <key>` on every route (the key, else RECURSA_API_KEY, else
    none) and cap request bodies at `max_body_bytes`, for every app in this process."""
    _guard["api_key"] = api_key or os.environ.get(API_KEY_ENV) or None
    _guard["max_bytes"] = max_body_bytes


def error_response(status: int, message: str, kind: str, param: str | None = None) -> JSONResponse:
    """A JSON error in OpenAI's shape."""
    body = {"error": {"message": message, "type": kind, "param": param, "code": str(status)}}
    return JSONResponse(body, status_code=status)


class GuardMiddleware:
    """Rejects unauthenticated requests (401) and oversized bodies (413) before any route runs."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        key, max_bytes = _guard["api_key"], _guard["max_bytes"]
        if key is not None and not _authorized(headers.get("authorization", ""), key):
            await error_response(401, "missing or invalid API key (Authorization: Bearer ...)",
                                 "authentication_error")(scope, receive, send)
            return
        declared = headers.get("content-length", "0")
        if not declared.isdigit() or int(declared) > max_bytes:
            await error_response(413, f"request body over {max_bytes} bytes",
                                 "invalid_request_error")(scope, receive, send)
            return
        await self.app(scope, _limited(receive, max_bytes), send)


def _authorized(header: str, key: str) -> bool:
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())


def _limited(receive: Receive, max_bytes: int) -> Receive:
    """`receive` that fails a chunked body once it grows past `max_bytes`."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        seen += len(message.get("body", b""))
        if seen > max_bytes:
            raise _BodyTooLarge
        return message

    return wrapped


class _BodyTooLarge(Exception):
    pass


def create_api(title: str, description: str) -> FastAPI:
    """A FastAPI app with the guard middleware and JSON handlers for every client error."""
    api = FastAPI(title=title, description=description)
    api.add_middleware(GuardMiddleware)

    @api.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        if first.get("type") == "json_invalid":
            return error_response(400, f"malformed JSON: {first.get('ctx', {}).get('error', 'cannot parse')}",
                                  "invalid_request_error")
        param = ".".join(str(part) for part in first["loc"] if part != "body") or None
        return error_response(422, f"{param or 'body'}: {first['msg']}", "invalid_request_error", param)

    @api.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if error.status_code == 404 else "invalid_request_error"
        return error_response(error.status_code, str(error.detail), kind)

    @api.exception_handler(_BodyTooLarge)
    async def too_large(request: Request, error: _BodyTooLarge) -> JSONResponse:
        return error_response(413, f"request body over {_guard['max_bytes']} bytes", "invalid_request_error")

    return api

