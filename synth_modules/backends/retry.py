"""Retrying transient LLM failures: exponential backoff with jitter that honours the server's Retry-After.

Both SDKs are built with their own retries switched off: the OpenAI SDK caps Retry-After at 60 s and
google-genai ignores it, and one policy for every backend keeps the behaviour (and the retry counts in
stats.json) the same whichever provider is used.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

T = TypeVar("T")


@dataclass(frozen=True)
class ErrorInfo:
    """What a backend knows about a failed request: may it be retried, after how long, and how to say it."""

    retryable: bool
    description: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 6  # transient-error retries per request (not the repair attempts of the pipeline)
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    # A longer Retry-After (a daily quota, say) fails the request at once instead of stalling the run.
    max_retry_after_s: float = 300.0

    def backoff_s(self, retry_number: int, rng: random.Random) -> float:
        """Exponential with "equal jitter": half the ceiling fixed, half random, so clients spread out."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** max(retry_number - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)

    def delay_s(self, info: ErrorInfo, retry_number: int, rng: random.Random) -> float:
        if info.retry_after_s is not None:
            # Never earlier than asked; a little jitter on top keeps many clients from returning at once.
            return info.retry_after_s + rng.uniform(0, min(1.0, 0.1 * info.retry_after_s))
        return self.backoff_s(retry_number, rng)

    def allows(self, info: ErrorInfo | None) -> bool:
        if info is None or not info.retryable:
            return False
        return info.retry_after_s is None or info.retry_after_s <= self.max_retry_after_s


class RequestFailed(Exception):
    """A request failed for good: not retryable, or still failing after every retry."""

    def __init__(self, info: ErrorInfo, attempts: int, policy: RetryPolicy):
        self.info = info
        self.attempts = attempts
        if (
            info.retryable
            and info.retry_after_s is not None
            and info.retry_after_s > policy.max_retry_after_s
        ):
            message = (
                f"{info.description}; the server asked to retry after {info.retry_after_s:.0f} s, more than "
                f"the {policy.max_retry_after_s:.0f} s we wait (quota exhausted?)"
            )
        elif info.retryable:
            message = f"{info.description} (gave up after {attempts} attempts)"
        else:
            message = info.description
        super().__init__(message)
        self.message = message


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` as seconds or an HTTP date; None if absent."""
    if not headers:
        return None
    lowered = {str(key).lower(): str(value) for key, value in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(float(lowered["retry-after-ms"]) / 1000.0, 0.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    classify: Callable[[BaseException], ErrorInfo | None],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[ErrorInfo, float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Await `call()`, retrying what `classify` calls retryable. Exceptions `classify` does not recognise
    (None) propagate untouched, since they are bugs, not provider trouble; recognised ones end as RequestFailed."""
    rng = rng or random.Random()
    attempts = 0

    async def counted() -> T:
        nonlocal attempts
        attempts += 1
        return await call()

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        info = classify(error) if error is not None else None
        return policy.delay_s(info or ErrorInfo(True, "unknown"), state.attempt_number, rng)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is None or state.outcome is None:
            return
        error = state.outcome.exception()
        info = classify(error) if error is not None else None
        on_retry(info or ErrorInfo(True, "unknown"), state.upcoming_sleep)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=retry_if_exception(lambda error: policy.allows(classify(error))),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        return await retrying(counted)
    except Exception as error:
        info = classify(error)
        if info is None:
            raise
        raise RequestFailed(info, attempts, policy) from error
