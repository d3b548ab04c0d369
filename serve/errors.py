"""OpenAI-style errors: every 4xx the gateway returns has the body the SDK expects."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve.protocol import ErrorBody, ErrorResponse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


class EngineLoadError(RuntimeError):
    """An engine refused to load (or unload) an adapter; `status` 503 when the object store
    it fetches from did not answer (retry later), else 400."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class EngineUnreachable(EngineLoadError):
    """An engine did not answer at all: it is taken out of rotation, not blamed."""


class APIError(Exception):
    """Raised anywhere in a request; rendered as an OpenAI error object."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_response(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            message=message, type=ERROR_TYPES.get(status, "api_error"), param=param, code=code
        )
    )
    return JSONResponse(body.model_dump(), status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        response = error_response(exc.status, exc.message, exc.code, exc.param)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        param = ".".join(str(p) for p in first["loc"] if p != "body") or None
        return error_response(
            400, f"{param}: {first['msg']}" if param else first["msg"], "invalid_request", param
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeout)
    async def _database_down(_: Request, exc: Exception) -> JSONResponse:
        """The database not answering is an outage to retry through, not a defect."""
        response = error_response(
            503, "the database is not answering: retry shortly", "database_unavailable"
        )
        response.headers["Retry-After"] = "2"
        return response

    @app.exception_handler(DataError)
    @app.exception_handler(OverflowError)
    async def _out_of_range(_: Request, exc: Exception) -> JSONResponse:
        """A number or text the database cannot hold (beyond 64 bits, longer than its
        column): the request's fault, said as such, whichever route it reached."""
        return error_response(
            400, "a value in the request is out of range for what it names", "out_of_range"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        response = error_response(exc.status_code, str(exc.detail))
        response.headers.update(exc.headers or {})
        return response
