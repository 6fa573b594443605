"""``checkout_kit.sandbox.runtime``: what a sandbox keeps for itself alone."""

from __future__ import annotations

import threading

from checkout_kit.sandbox import create_sandbox_app, sandbox_of
from checkout_kit.sandbox.runtime import RequestLocks


def test_request_locks_are_per_sandbox(cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    """Two sandboxes in one process (two test apps) never wait for each other's
    request ids, even with the same Public ID and X-Request-ID."""
    first, second = (sandbox_of(create_sandbox_app(keys=cloudpayments_sandbox_keys))
                     for _ in range(2))
    assert first.request_locks is not second.request_locks
    key = f"{first.public_id}\x00same-request-id"
    entered = threading.Event()

    def other() -> None:
        with second.request_locks.hold(key):
            entered.set()

    with first.request_locks.hold(key):
        thread = threading.Thread(target=other)
        thread.start()
        assert entered.wait(5), "the second sandbox waited for the first one's lock"
        thread.join(5)


def test_one_key_runs_one_at_a_time_and_the_table_empties() -> None:
    locks = RequestLocks()
    order: list[str] = []
    inside = threading.Event()

    def second() -> None:
        with locks.hold("k"):
            order.append("second")

    with locks.hold("k"):
        thread = threading.Thread(target=second)
        thread.start()
        inside.wait(0.05)
        order.append("first")
        assert locks.in_use() == 1
    thread.join(5)
    assert order == ["first", "second"]
    assert locks.in_use() == 0
