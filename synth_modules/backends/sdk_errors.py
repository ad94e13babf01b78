"""Errors of the Stainless-generated SDKs (openai, anthropic), classified once: transient or not, and why.

Both SDKs raise the same hierarchy (APITimeoutError, APIConnectionError, APIStatusError with a status code
and response, APIError); only the retryable statuses, the key's variable and the shape of the error body
differ, so those are the parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from types import ModuleType
from typing import Any

from synth_modules.backends.retry import ErrorInfo, parse_retry_after


def body_message(error: Any, with_kind: bool = False) -> str:
    """The server's own message from the error body (`{"error": {"message", "type"}}`), else the SDK's."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            kind = inner.get("type") if with_kind else None
            return f"{kind}: {inner['message']}" if kind else str(inner["message"])
    return str(getattr(error, "message", "") or error)


def classify_sdk_error(
    sdk: ModuleType,
    error: BaseException,
    *,
    timeout_s: float,
    retryable_status: Collection[int],
    key_env: str,
    model: str,
    message: Callable[[Any], str] = body_message,
) -> ErrorInfo | None:
    """ErrorInfo for an error of `sdk` (the imported openai or anthropic module); None when it is not one."""
    if isinstance(error, sdk.APITimeoutError):
        return ErrorInfo(True, f"request timed out after {timeout_s:g} s")
    if isinstance(error, sdk.APIConnectionError):
        return ErrorInfo(True, f"connection error: {error.__cause__ or error}")
    if isinstance(error, sdk.APIStatusError):
        status = error.status_code
        text = message(error)
        if status in retryable_status or status >= 500:
            return ErrorInfo(
                True, f"HTTP {status}: {text}", retry_after_s=parse_retry_after(error.response.headers)
            )
        if status == 401:
            return ErrorInfo(False, f"HTTP 401 (check {key_env}): {text}")
        if status == 404:
            return ErrorInfo(False, f"HTTP 404 (unknown model {model!r}?): {text}")
        return ErrorInfo(False, f"HTTP {status}: {text}")
    if isinstance(error, sdk.APIError):
        return ErrorInfo(False, f"API error: {error}")
    return None
