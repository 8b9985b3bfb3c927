"""Waiting for a condition in tests: a liveness bound, never a speed assertion."""
import time


def wait_for(predicate, timeout: float, what: str, interval: float = 0.01):
    """Poll predicate() until it returns something true and return that; fail the test with
    `what` if it has not happened within `timeout` seconds (a generous bound)."""
    limit = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > limit:
            raise AssertionError("%s (waited %ss)" % (what, timeout))
        time.sleep(interval)
