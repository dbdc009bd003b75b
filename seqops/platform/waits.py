"""Waiting for something to be ready, with tenacity doing the polling and the deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(check: Callable[[], T | None], *, timeout: float, every: float, timed_out: Callable[[], str]) -> T:
    """Call ``check`` every ``every`` seconds until it returns something other than None.

    An exception from ``check`` ends the wait at once (it is a verdict, not a reason to retry).

    Raises:
        TimeoutError: ``timeout`` seconds passed; the message is ``timed_out()``, which says what
            was still missing and where to look.
    """
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

    retrying = Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(every), retry=retry_if_result(lambda r: r is None)
    )
    try:
        return retrying(check)
    except RetryError:
        raise TimeoutError(timed_out()) from None
