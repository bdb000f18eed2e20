"""Errors as HTTP problem responses (RFC 9457 ``application/problem+json``).

Every error the API returns has the same JSON shape: ``status``, ``title``, ``detail`` (the one-line message
of the :class:`~vcframe.errors.VcframeError` behind it), ``hint`` (what to do) and ``error`` (the error's
class name). :data:`ERROR_RESPONSES` declares each status in the OpenAPI document.
"""

from __future__ import annotations

import json
import re
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field

from vcframe.errors import (
    CheckpointError,
    ConfigError,
    IncompatibleComponentsError,
    InputError,
    OutputError,
    PluginError,
    VcframeError,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An error response."""

    status: int = Field(description="The HTTP status code.")
    title: str = Field(description="The status phrase, e.g. 'Unprocessable Content'.")
    detail: str = Field(description="One line that says what is wrong.")
    hint: str | None = Field(None, description="One line that says what to do about it.")
    error: str = Field(description="Class of the error, e.g. 'AudioInputError', 'UnsupportedMediaType'.")


class HTTPProblem(VcframeError):
    """A VcframeError that carries its own HTTP status (and extra response headers)."""

    status = 500

    def __init__(self, message: str, *, hint: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, hint=hint)
        self.headers = headers or {}


class BadRequest(HTTPProblem):
    """A request the server refuses outright (e.g. a Host header it does not serve)."""

    status = 400


class Forbidden(HTTPProblem):
    """A cross-origin write, or an action not allowed on this resource (deleting a sample voice)."""

    status = 403


class NotFound(HTTPProblem):
    """No such voice, job, plugin or page (or a job whose result has expired)."""

    status = 404


class Conflict(HTTPProblem):
    """The resource is not in a state that allows this (a job's audio before it is done)."""

    status = 409


class PayloadTooLarge(HTTPProblem):
    """An upload over the size limit."""

    status = 413


class UnsupportedMediaType(HTTPProblem):
    """Bytes that are not WAV, FLAC, OGG or MP3 (whatever the declared type or file name)."""

    status = 415


class QueueFull(HTTPProblem):
    """Every slot of the inference queue is taken; ``Retry-After`` says when to try again."""

    status = 429


class ServerStopping(HTTPProblem):
    """The server is shutting down: waiting and running requests are dropped."""

    status = 503

    def __init__(
        self,
        message: str = "the server is shutting down",
        *,
        hint: str | None = "send the request again when it is back",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, headers=headers)


class InternalError(HTTPProblem):
    """An unexpected failure whose traceback is already in the server log (e.g. a job's, answered later)."""

    status = 500

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = "the server log has the traceback; please report it",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, hint=hint, headers=headers)


class ClientGone(HTTPProblem):
    """The client disconnected while its request waited or ran; the answer goes to nobody (nginx's 499)."""

    status = 499


#: A hint that names a command line (``'vcframe voices list'``, ``--allow-mismatch``, ``-o key=value``), which a
#: web client cannot act on.
_CLI_HINT = re.compile(r"'vcframe |(?:^|[\s(])--?[a-z]|\bvcframe (?:check|plugins|voices|run|embed)\b")


def web_hint(error: VcframeError) -> str | None:
    """``error``'s hint, or one a web client can act on where the hint speaks of the command line.

    Core errors are written for the CLI; the page and the API show these instead (the server's operator
    finds the original in the server log for 503s).
    """
    hint = error.hint
    if hint is None or not _CLI_HINT.search(hint):
        return hint
    if isinstance(error, IncompatibleComponentsError):
        return "pick components that fit together (GET /v1/plugins shows each one's spec)"
    if isinstance(error, PluginError):
        return "pick an installed component (the page's lists, or GET /v1/plugins)"
    if isinstance(error, (CheckpointError, ConfigError, OutputError)):
        return "the server's set-up is incomplete: ask its operator (the server log has the details)"
    return "fix the request and send it again"


def status_of(error: VcframeError) -> int:
    """The HTTP status of a vcframe error."""
    if isinstance(error, HTTPProblem):
        return error.status
    if isinstance(error, (InputError, ConfigError, PluginError)):
        return 422  # the request named bad input, options or a component that is not installed
    if isinstance(error, IncompatibleComponentsError):
        return 409
    if isinstance(error, CheckpointError):
        return 503  # the server's model files are missing or broken: not the client's fault
    if isinstance(error, OutputError):
        return 500
    return 500


def problem(status: int, detail: str, *, hint: str | None = None, error: str = "HTTPError") -> dict[str, Any]:
    """The JSON body of a problem response."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return Problem(status=status, title=title, detail=detail, hint=hint, error=error).model_dump()


def problem_of(error: VcframeError) -> tuple[int, dict[str, Any]]:
    """Status and JSON body for a vcframe error."""
    status = status_of(error)
    return status, problem(status, error.message, hint=web_hint(error), error=type(error).__name__)


def problem_bytes(status: int, detail: str, *, hint: str | None = None, error: str = "HTTPError") -> bytes:
    """A problem body encoded for raw ASGI responses (middleware)."""
    return json.dumps(problem(status, detail, hint=hint, error=error)).encode()


def _declared(description: str) -> dict[str, Any]:
    return {"model": Problem, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


#: Every error status the API can answer, for ``responses=`` of the routes (OpenAPI).
ERROR_RESPONSES: dict[int, dict[str, Any]] = {
    400: _declared("The Host header is not one this server answers to, or the request body is malformed."),
    403: _declared("A cross-origin write was refused, or the action is not allowed on this resource."),
    404: _declared("No such voice, job or plugin (or the job's result has expired)."),
    409: _declared("The components do not fit together, or the job is not in a state that allows this."),
    413: _declared("The upload or the request body is larger than the server accepts."),
    415: _declared("The upload is not WAV, FLAC, OGG or MP3 audio (judged from its bytes)."),
    422: _declared("Bad input: text, audio, seed, voice name, component name or form fields."),
    429: _declared("The inference queue is full; retry after the seconds in the Retry-After header."),
    500: _declared("An unexpected server error."),
    503: _declared("The server's model files are missing or broken."),
}

#: Statuses every route can answer (host check, validation, unexpected errors).
COMMON = (400, 422, 500)
#: Statuses of routes that run the models.
INFERENCE = (409, 429, 503)
#: Statuses of routes that take an audio upload.
UPLOAD = (413, 415)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the COMMON statuses plus ``statuses``."""
    return {status: ERROR_RESPONSES[status] for status in sorted({*COMMON, *statuses})}
