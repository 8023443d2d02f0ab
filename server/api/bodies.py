"""Request bodies read as raw bytes and parsed by pydantic, and 422 answers that are short and safe.

Handlers take the body as bytes so that a signed request's signature is checked
before anything parses it: a stranger's megabyte of JSON costs a hash, not a parse.
The bodies stay documented in the OpenAPI schema (`documented`, `add_body_schemas`),
which is what clients and the fuzz test read.

A 422 names each wrong field and says what is wrong with it, but never echoes the
input: the input may be a megabyte, and may hold text (lone surrogates) that cannot
even be encoded as UTF-8 to answer with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute

from server.api.schemas import NO_NUL

Body = TypeVar("Body", bound=BaseModel)

MAX_ERRORS = 10
MAX_TEXT = 200
REF = "#/components/schemas/{model}"


class BodyInvalid(Exception):
    """A body that does not fit its model; answered as 422 like FastAPI's own validation errors."""

    def __init__(self, errors: Sequence[Any]) -> None:
        super().__init__("request body is invalid")
        self.errors = list(errors)


def parse(model: type[Body], raw: bytes) -> Body:
    """The body as `model`, or BodyInvalid; the JSON parser refuses lone surrogates and runaway depth."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise BodyInvalid([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from None


def safe_text(value: object) -> str:
    """Short, and always encodable: a lone surrogate becomes its escape, not a UnicodeEncodeError."""
    text = str(value).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _message(error: dict[str, Any]) -> str:
    if (error.get("ctx") or {}).get("pattern") == NO_NUL:
        return "must not contain a NUL character"
    return safe_text(error.get("msg", "invalid"))


def short_errors(errors: Iterable[Any]) -> list[dict[str, Any]]:
    """FastAPI's error list without the input or context, at most MAX_ERRORS of them."""
    listed = list(errors)
    shown: list[dict[str, Any]] = [
        {
            "loc": [item if isinstance(item, int) else safe_text(item) for item in error.get("loc", ())],
            "msg": _message(error),
            "type": safe_text(error.get("type", "value_error")),
        }
        for error in listed[:MAX_ERRORS]
    ]
    if len(listed) > MAX_ERRORS:
        shown.append(
            {"loc": ["body"], "msg": f"and {len(listed) - MAX_ERRORS} more errors", "type": "too_many"}
        )
    return shown


def invalid_answer(errors: Iterable[Any]) -> JSONResponse:
    return JSONResponse({"detail": short_errors(errors)}, status_code=422)


def add_validation_answers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def request_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return invalid_answer(exc.errors())

    @app.exception_handler(BodyInvalid)
    async def body_invalid(_request: Request, exc: BodyInvalid) -> JSONResponse:
        return invalid_answer(exc.errors)


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route that reads its body itself: the body is still in the schema."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}},
        }
    }


def add_body_schemas(
    app: FastAPI,
    models: Iterable[type[BaseModel]],
    document_routes: Callable[[dict[str, Any], Iterable[BaseRoute]], None] = lambda _schema, _routes: None,
) -> None:
    """Puts the body models (and the models they nest) in the schema's components, and lets
    `document_routes` add what routes read by hand (the signature headers)."""
    models = list(models)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            found = model.model_json_schema(ref_template=REF)
            for name, nested in found.pop("$defs", {}).items():
                components.setdefault(name, nested)
            components.setdefault(model.__name__, found)
        document_routes(schema, app.routes)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
