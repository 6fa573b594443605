"""checkout_kit.client._operations: one operation per client method, the same in both
shells."""

from __future__ import annotations

import pytest

from checkout_kit.client import AsyncCloudPaymentsClient, CloudPaymentsClient
from checkout_kit.client import _operations as ops


def test_operations_are_the_client_methods() -> None:
    names = [operation.__name__ for operation in ops.OPERATIONS]
    assert len(set(names)) == len(names)
    assert {n for n in vars(CloudPaymentsClient) if not n.startswith("_")} - {
        "close", "worst_case_seconds"} == set(
        names
    )


@pytest.mark.parametrize("client", [CloudPaymentsClient, AsyncCloudPaymentsClient])
def test_find_payments_is_gone_and_its_successors_stay(client: type) -> None:
    # The deprecated shim of a package never released: find_operation replaced it.
    names = {operation.__name__ for operation in ops.OPERATIONS}
    assert "find_payments" not in names and not hasattr(client, "find_payments")
    assert {"find_payment", "find_operation"} <= names
    assert all(callable(getattr(client, name)) for name in ("find_payment", "find_operation"))
