"""A payment to record is one value, checked once (issue: the first hour, §9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from checkout_kit.errors import InvalidRequestError, MoneyError
from checkout_kit.ledger import requests
from checkout_kit.ledger.requests import PaymentRequest
from checkout_kit.ledger.store import Ledger


def test_the_checked_form_replaces_what_was_given() -> None:
    moment = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=3)))
    request = PaymentRequest(invoice_id="A-1", amount="1490", currency="rub",  # type: ignore[arg-type]
                             description="Order", metadata={"n": 1}, expires_at=moment)
    assert (request.amount, request.currency) == (Decimal("1490.00"), "RUB")
    assert request.metadata_json == '{"n":1}'
    assert request.expires_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert request == PaymentRequest(invoice_id="A-1", amount=Decimal("1490.00"),
                                     description="Order", metadata={"n": 1},
                                     expires_at=moment)


@pytest.mark.parametrize(("fields", "error", "field"), [
    ({"invoice_id": " "}, InvalidRequestError, "invoice_id"),
    ({"scheme": "later"}, InvalidRequestError, "scheme"),
    ({"success_url": "javascript:alert(1)"}, InvalidRequestError, "success_url"),
    ({"email": "nobody"}, InvalidRequestError, "email"),
    ({"expires_at": datetime(2026, 3, 1)}, InvalidRequestError, "expires_at"),
    ({"amount": "1.001"}, MoneyError, None),
    ({"currency": "XXX"}, MoneyError, None),
])
def test_bad_fields_are_refused_by_name(fields: dict[str, Any], error: type[Exception],
                                        field: str | None) -> None:
    given = {"invoice_id": "A-1", "amount": "10.00", "description": "Order", **fields}
    with pytest.raises(error) as info:
        PaymentRequest(**given)
    if field is not None:
        assert getattr(info.value, "field", None) == field


def test_a_request_or_its_fields_not_both() -> None:
    request = PaymentRequest(invoice_id="A-1", amount=Decimal("10.00"), description="d")
    assert PaymentRequest.of(request, {}) is request
    with pytest.raises(TypeError, match="not both"):
        PaymentRequest.of(request, {"currency": "USD"})
    with pytest.raises(TypeError, match="must be a PaymentRequest"):
        PaymentRequest.of({"invoice_id": "A-1"}, {})  # type: ignore[arg-type]


def test_every_layer_takes_the_request_and_checks_it_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from checkout_kit.client import CloudPaymentsClient
    from checkout_kit.ledger import PaymentService, upgrade

    url = f"sqlite:///{tmp_path}/l.db"
    upgrade(url)
    service = PaymentService(Ledger(url), CloudPaymentsClient("pk", "secret"))
    checks = {"n": 0}
    real = requests.PaymentRequest.__post_init__

    def counted(self: PaymentRequest) -> None:
        checks["n"] += 1
        real(self)

    monkeypatch.setattr(requests.PaymentRequest, "__post_init__", counted)
    made = service.create_payment(invoice_id="A-1", amount="10.00", description="d")
    assert checks["n"] == 1
    again = service.create_payment(PaymentRequest(invoice_id="A-1", amount=Decimal("10.00"),
                                                  description="d"))
    assert checks["n"] == 2 and again.id == made.id  # the same payment, checked once more
    service.ledger.engine.dispose()
    service.client.close()
