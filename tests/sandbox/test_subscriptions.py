"""Subscriptions charged by the virtual clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from checkout_kit import notifications as nt
from checkout_kit.client import CloudPaymentsClient
from checkout_kit.errors import RequestRejectedError
from checkout_kit.models import SubscriptionStatus, Transaction
from checkout_kit.pytest_plugin import SANDBOX_BASE_URL
from checkout_kit.sandbox import Sandbox
from checkout_kit.sandbox.rules.subscriptions import add_interval

IP = "203.0.113.7"


def _token(client: CloudPaymentsClient, sandbox: Sandbox, number: str, account: str) -> str:
    tx = client.charge(Decimal("1"), ip_address=IP, cryptogram=sandbox.make_cryptogram(number),
                       account_id=account, save_card=True)
    assert isinstance(tx, Transaction)
    token = tx.raw["Token"]
    assert isinstance(token, str)
    return token


def _http(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=SANDBOX_BASE_URL, transport=httpx.WSGITransport(app=sandbox.app),
                        auth=(sandbox.public_id, sandbox.api_secret))


def _charges(sandbox: Sandbox, sub_id: str) -> list[Any]:
    return sorted((t for t in sandbox.state.transactions.values() if t.subscription_id == sub_id),
                  key=lambda t: t.id)


def _recurrent(shop: Any) -> list[str | None]:
    return [nt.parse_notification("Recurrent", r.raw).status for r in shop.of("Recurrent")]


def test_monthly_subscription_runs_to_expiry(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Recurrent", "Pay")
    token = _token(cloudpayments_client, cloudpayments_sandbox, "4000000000003055", "user-7")
    start = cloudpayments_sandbox.now() + timedelta(days=1)
    sub = cloudpayments_client.create_subscription(
        token=token, account_id="user-7", amount=Decimal("299.00"), description="Magazine",
        email="reader@example.com", start_date=start, interval="Month", period=1, max_periods=3)
    assert sub.id.startswith("sc_") and sub.status is SubscriptionStatus.ACTIVE
    assert sub.next_transaction_date is not None
    assert abs(sub.next_transaction_date - start) < timedelta(seconds=1)
    cloudpayments_sandbox.advance(timedelta(hours=23))
    assert _charges(cloudpayments_sandbox, sub.id) == []
    cloudpayments_sandbox.advance(timedelta(hours=2))
    (first,) = _charges(cloudpayments_sandbox, sub.id)
    assert first.status == "Completed" and first.tr_initiator_code == 0
    now = cloudpayments_client.get_subscription(sub.id)
    assert now.successful_transactions_number == 1
    assert now.next_transaction_date is not None
    assert abs(now.next_transaction_date - add_interval(start, "Month", 1)) < timedelta(seconds=1)
    cloudpayments_sandbox.advance(timedelta(days=92))
    charges = _charges(cloudpayments_sandbox, sub.id)
    assert len(charges) == 3
    assert [c.created.month for c in charges] == [
        add_interval(start, "Month", k).month for k in range(3)]
    done = cloudpayments_client.get_subscription(sub.id)
    assert done.status is SubscriptionStatus.EXPIRED and done.next_transaction_date is None
    assert _recurrent(shop) == ["Expired"]
    pays = [nt.parse_notification("Pay", r.raw) for r in shop.of("Pay")]
    assert [p.subscription_id for p in pays[1:]] == [sub.id] * 3
    assert [s.id for s in cloudpayments_client.find_subscriptions("user-7")] == [sub.id]


def test_failures_retry_after_24h_then_reject(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, shop: Any,
    subscribe: Callable[..., None],
) -> None:
    subscribe("Recurrent", "Fail")
    # 4111 1111 1111 1111: the cryptogram payment succeeds, token payments decline 5051
    token = _token(cloudpayments_client, cloudpayments_sandbox, "4111111111111111", "user-8")
    sub = cloudpayments_client.create_subscription(
        token=token, account_id="user-8", amount=Decimal("10"), description="Daily",
        start_date=cloudpayments_sandbox.now() + timedelta(minutes=10), interval="Day", period=1)
    cloudpayments_sandbox.advance(timedelta(minutes=11))
    assert cloudpayments_client.get_subscription(sub.id).status is SubscriptionStatus.PAST_DUE
    assert len(shop.of("Fail")) == 1
    cloudpayments_sandbox.advance(timedelta(hours=23))
    assert len(_charges(cloudpayments_sandbox, sub.id)) == 1
    cloudpayments_sandbox.advance(timedelta(hours=1))
    assert len(_charges(cloudpayments_sandbox, sub.id)) == 2
    assert cloudpayments_client.get_subscription(sub.id).failed_transactions_number == 2
    cloudpayments_sandbox.advance(timedelta(days=10))
    assert len(_charges(cloudpayments_sandbox, sub.id)) == 3
    rejected = cloudpayments_client.get_subscription(sub.id)
    assert rejected.status is SubscriptionStatus.REJECTED
    assert _recurrent(shop) == ["PastDue", "Rejected"]
    assert [c.reason_code for c in _charges(cloudpayments_sandbox, sub.id)] == [5051] * 3

    # an update reactivates it (gateway rule), and an API change sends no Recurrent
    revived = cloudpayments_client.update_subscription(sub.id, amount=Decimal("12.50"))
    assert revived.status is SubscriptionStatus.ACTIVE and revived.amount == Decimal("12.50")
    assert revived.failed_transactions_number == 0
    cloudpayments_client.cancel_subscription(sub.id)
    assert cloudpayments_client.get_subscription(sub.id).status is SubscriptionStatus.CANCELLED
    cloudpayments_sandbox.advance(timedelta(days=5))
    assert len(_charges(cloudpayments_sandbox, sub.id)) == 3
    assert _recurrent(shop) == ["PastDue", "Rejected"]


def test_require_confirmation_authorizes(cloudpayments_client: CloudPaymentsClient,
                                         cloudpayments_sandbox: Sandbox) -> None:
    token = _token(cloudpayments_client, cloudpayments_sandbox, "5205000000003055", "u")
    sub = cloudpayments_client.create_subscription(
        token=token, account_id="u", amount=Decimal("5"), description="Weekly",
        start_date=cloudpayments_sandbox.now() + timedelta(hours=1), interval="Week", period=2,
        require_confirmation=True)
    cloudpayments_sandbox.advance(timedelta(days=15))
    charges = _charges(cloudpayments_sandbox, sub.id)
    assert len(charges) == 2 and charges[0].status == "Cancelled"  # 7-day expiry
    assert charges[1].status == "Authorized"
    assert abs(charges[1].created - charges[0].created - timedelta(weeks=2)) < timedelta(seconds=1)


def test_widget_recurrent_json_data_creates_a_subscription(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    tx = cloudpayments_client.charge(
        Decimal("150"), ip_address=IP, account_id="widget-user",
        cryptogram=cloudpayments_sandbox.make_cryptogram(
        "2202000000003055"),
        json_data={"CloudPayments": {"recurrent": {"interval": "Week", "period": 1,
                                                   "maxPeriods": 2}}})
    assert isinstance(tx, Transaction) and tx.subscription_id and tx.raw["Token"]
    sub = cloudpayments_client.get_subscription(tx.subscription_id)
    assert sub.amount == Decimal("150.00") and sub.max_periods == 2
    assert sub.start_date is not None and sub.start_date - tx.created_at == timedelta(weeks=1)
    cloudpayments_sandbox.advance(timedelta(days=30))
    assert len(_charges(cloudpayments_sandbox, sub.id)) == 3  # the first payment + 2 periods
    assert cloudpayments_client.get_subscription(sub.id).status is SubscriptionStatus.EXPIRED


def test_recurrent_without_account_id_creates_nothing(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    tx = cloudpayments_client.charge(
        Decimal("1"), ip_address=IP, cryptogram=cloudpayments_sandbox.make_cryptogram(
        "4000000000003055"),
        json_data={"cloudPayments": {"recurrent": {"interval": "Month", "period": 1}}})
    assert isinstance(tx, Transaction) and tx.subscription_id is None
    assert cloudpayments_sandbox.state.subscriptions == {}


def test_subscription_validation(cloudpayments_client: CloudPaymentsClient,
                                 cloudpayments_sandbox: Sandbox) -> None:
    token = _token(cloudpayments_client, cloudpayments_sandbox, "4000000000003055", "v")
    base = {"token": token, "account_id": "v", "amount": Decimal("1"), "description": "x"}
    later = cloudpayments_sandbox.now() + timedelta(days=1)
    with pytest.raises(RequestRejectedError, match="future"):
        cloudpayments_client.create_subscription(
            **base, start_date=cloudpayments_sandbox.now() - timedelta(days=1),
            interval="Day", period=1)
    with pytest.raises(RequestRejectedError, match="Interval"):
        cloudpayments_client.create_subscription(**base, start_date=later, interval="Year",
                                                 period=1)
    with pytest.raises(RequestRejectedError, match="Token"):
        cloudpayments_client.create_subscription(**{**base, "token": "tk_x"}, start_date=later,
                                                 interval="Day", period=1)
    with pytest.raises(RequestRejectedError, match="not found"):
        cloudpayments_client.get_subscription("sc_missing")


@pytest.mark.parametrize("start,interval,count,expected", [
    (datetime(2025, 1, 31, 12, tzinfo=UTC), "Month", 1, datetime(2025, 2, 28, 12, tzinfo=UTC)),
    (datetime(2024, 1, 31, 12, tzinfo=UTC), "Month", 1, datetime(2024, 2, 29, 12, tzinfo=UTC)),
    (datetime(2025, 1, 31, 12, tzinfo=UTC), "Month", 2, datetime(2025, 3, 31, 12, tzinfo=UTC)),
    (datetime(2025, 11, 15, tzinfo=UTC), "Month", 14, datetime(2027, 1, 15, tzinfo=UTC)),
    (datetime(2025, 1, 1, tzinfo=UTC), "Week", 3, datetime(2025, 1, 22, tzinfo=UTC)),
    (datetime(2025, 1, 1, tzinfo=UTC), "Day", 45, datetime(2025, 2, 15, tzinfo=UTC)),
])
def test_schedule_arithmetic(start: datetime, interval: str, count: int,
                             expected: datetime) -> None:
    assert add_interval(start, interval, count) == expected


@pytest.mark.parametrize("receipt", ['{"x": NaN}', '{"x": Infinity}', '{"x": 1e50000000}'])
def test_create_with_a_non_json_receipt_is_refused_and_stores_nothing(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox, receipt: str,
) -> None:
    token = _token(cloudpayments_client, cloudpayments_sandbox, "4000000000003055", "nan")
    start = (cloudpayments_sandbox.now() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")
    body = (f'{{"Token": "{token}", "AccountId": "nan", "Amount": 1, "Description": "x", '
            f'"StartDate": "{start}", "Interval": "Day", "Period": 1, '
            f'"CustomerReceipt": {receipt}}}')
    answer = _http(cloudpayments_sandbox).post(
        "/subscriptions/create", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["Success"] is False
    assert cloudpayments_sandbox.state.subscriptions == {}
    assert cloudpayments_client.find_subscriptions("nan") == []
    assert _http(cloudpayments_sandbox).get("/_sandbox/subscriptions").json() == []


def test_update_with_one_bad_field_changes_nothing(
    cloudpayments_client: CloudPaymentsClient, cloudpayments_sandbox: Sandbox,
) -> None:
    token = _token(cloudpayments_client, cloudpayments_sandbox, "4000000000003055", "upd")
    sub = cloudpayments_client.create_subscription(
        token=token, account_id="upd", amount=Decimal("3"), description="before",
        start_date=cloudpayments_sandbox.now() + timedelta(days=1), interval="Day", period=1)
    for bad in ({"Interval": "Year"}, {"CustomerReceipt": '{"a": NaN}'}):
        answer = _http(cloudpayments_sandbox).post(
            "/subscriptions/update", json={"Id": sub.id, "Description": "after", **bad})
        assert answer.json()["Success"] is False
        assert cloudpayments_sandbox.state.subscriptions[sub.id].description == "before"
