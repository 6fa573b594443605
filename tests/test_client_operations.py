"""checkout_kit.client._operations: one operation per client method, the same in both
shells."""

from __future__ import annotations

from checkout_kit.client import CloudPaymentsClient
from checkout_kit.client import _operations as ops


def test_operations_are_the_client_methods() -> None:
    names = [operation.__name__ for operation in ops.OPERATIONS]
    assert len(set(names)) == len(names)
    assert {n for n in vars(CloudPaymentsClient) if not n.startswith("_")} - {
        "close", "worst_case_seconds"} == set(
        names
    )

