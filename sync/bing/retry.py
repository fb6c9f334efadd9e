"""The one retry policy of every call to Microsoft: capped exponential backoff with jitter,
a number of tries per unit of work, and the waits for Microsoft's processing."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

from sync.bing.errors import THROTTLE_CODES, TransientBingError

log = logging.getLogger("sync.bing")


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, per step.

    ``max_attempts`` tries per upload file (or per lookup) in total; ``upload_timeout`` bounds
    the file POST and the wait for Microsoft to process one file (about a minute per 10k rows);
    ``request_timeout`` bounds each SOAP call and the result file download.
    """

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    upload_timeout: float = 600.0
    request_timeout: float = 120.0
    #: How long to wait for Microsoft to process a file before leaving it in flight (its
    #: result is then collected by a later run); None: upload_timeout. 0: submit and return.
    processing_wait: float | None = None

    @property
    def wait(self) -> float:
        return self.upload_timeout if self.processing_wait is None else self.processing_wait

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if min(self.base_delay, self.max_delay) < 0:
            raise ValueError("delays must be >= 0")
        if self.upload_timeout <= 0 or self.request_timeout <= 0:
            raise ValueError("timeouts must be > 0")

    def backoff(self, failures: int, throttled: bool = False) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based)."""
        if throttled:
            ceiling = self.max_delay
        else:
            ceiling = min(self.max_delay, self.base_delay * (2 ** max(0, failures - 1)))
        return random.uniform(ceiling / 2, ceiling)


DEFAULT_RETRY = RetryPolicy()


class Attempts:
    """Counts transient failures of one unit of work and sleeps between tries."""

    def __init__(self, policy: RetryPolicy):
        self.policy = policy
        self.failures = 0

    def failed(self, err: TransientBingError) -> None:
        self.failures += 1
        if not err.retry_in_run or self.failures >= self.policy.max_attempts:
            raise err
        delay = self.policy.backoff(self.failures, throttled=err.code in THROTTLE_CODES)
        log.warning(
            "%s; retrying in %.1f s (try %d of %d)",
            err,
            delay,
            self.failures + 1,
            self.policy.max_attempts,
        )
        time.sleep(delay)
