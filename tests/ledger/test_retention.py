"""Audit retention: old notification bodies are masked, keeping what exactly-once needs."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from checkout_kit import jsoncodec, testing, webhooks
from checkout_kit.errors import InvalidRequestError
from checkout_kit.ledger import Ledger
from checkout_kit.ledger.inbox import Inbox
from checkout_kit.ledger.retention import HIDDEN, mask_body, mask_error, purge_notifications
from checkout_kit.notifications import parse_notification

from .conftest import Clock

SECRET = "sk_retention"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
#: What a payer typed or a card gave: none of it may survive a purge.
PERSONAL = {
    "Email": "ivan.petrov@example.com", "Name": "IVAN PETROV", "IpAddress": "198.51.100.23",
    "IpCity": "Москва", "Token": "tk_4f2a9c8b7e6d5a4f3e2d1c0b9a8f7e6d",
    "Data": '{"phone":"+79001234567"}', "Description": "Заказ для Ивана Петрова",
    "CardExpDate": "12/29",
}


def _delivery(kind: str, method: str, encoding: str) -> testing.OutgoingNotification:
    fields = testing.sample_fields(kind, now=NOW, rng=random.Random(3))
    if kind not in ("Recurrent", "Receipt"):
        fields.update(PERSONAL)
    else:
        fields["Email"] = PERSONAL["Email"]
    return testing.build_notification(kind, fields, SECRET, method=method, encoding=encoding)


@pytest.mark.parametrize("kind", webhooks.WEBHOOK_TYPES)
@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("encoding", ["utf-8", "windows-1251"])
def test_a_masked_body_keeps_the_key_and_loses_the_payer(kind: str, method: str,
                                                         encoding: str) -> None:
    out = _delivery(kind, method, encoding)
    received = webhooks.receive(method, out.body, out.headers, SECRET, expected_type=kind,
                                encoding=encoding)
    masked = mask_body(out.body, out.headers.get("Content-Type"))
    again = parse_notification(kind, masked, encoding=encoding)
    # Still the same notification for exactly-once: a late redelivery is a duplicate.
    assert webhooks.notification_key(again) == received.key
    for name, value in received.fields.items():
        if name in PERSONAL or name in ("Email", "Receipt", "Url", "QrCodeUrl"):
            assert again.fields[name] != value
            for piece in value.replace("@", " ").split():
                if len(piece) > 3 and name != "Email":
                    assert piece not in again.fields[name]
    if "Email" in received.fields:
        assert again.fields["Email"] == "i***@example.com"
    if "Token" in received.fields:
        assert again.fields["Token"] not in (received.fields["Token"], HIDDEN)
        assert len(again.fields["Token"]) < len(received.fields["Token"])
    for name in ("TransactionId", "Amount", "Currency", "InvoiceId", "Status", "Reason"):
        if name in received.fields:
            assert again.fields[name] == received.fields[name]


def test_an_e_mail_account_id_is_masked_and_another_kept() -> None:
    assert mask_body(b"AccountId=user%40example.com&InvoiceId=1") == \
        b"AccountId=u***@example.com&InvoiceId=1"
    assert mask_body(b"AccountId=customer-7&InvoiceId=1") == b"AccountId=customer-7&InvoiceId=1"


def test_json_and_garbage_bodies_are_masked_too() -> None:
    body = jsoncodec.dumps_bytes({"TransactionId": 5, "Amount": "1.00", "Name": "Иван",
                                  "Email": "a@b.example", "Data": {"x": 1}})
    assert jsoncodec.loads(mask_body(body, "application/json")) == {
        "TransactionId": 5, "Amount": "1.00", "Name": HIDDEN, "Email": "a***@b.example",
        "Data": HIDDEN}
    assert HIDDEN == ""
    assert mask_body(b"not json", "application/json") == b""
    # A forged body whose field names are themselves personal data.
    forged = mask_body(b"ivan%40example.com&Name=Ivan&%D0%98%D0%B2%D0%B0%D0%BD=1&=&&PETROV"
                       b"&TransactionId=9")
    assert forged == b"Name=&TransactionId=9"


def _record(inbox: Inbox, body: bytes, kind: str = "Pay") -> int:
    return inbox.record(type=kind, method="POST", body=body,
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                        remote_addr="203.0.113.1", signature_valid=True).id


def test_purge_masks_only_what_is_older_than_the_period(ledger: Ledger, clock: Clock) -> None:
    inbox = Inbox(ledger)
    body = b"TransactionId=1&Amount=1.00&Email=ivan%40example.com&Name=IVAN"
    old = [_record(inbox, body) for _ in range(5)]
    clock.advance(timedelta(days=60))
    recent = _record(inbox, body)
    clock.advance(timedelta(days=31))  # the old ones are 91 days old, the recent one 31
    assert purge_notifications(ledger, older_than=timedelta(days=90), batch=2) == 5
    for record_id in old:
        row = inbox.get(record_id)
        assert row.purged_at == clock.now
        assert row.body == b"TransactionId=1&Amount=1.00&Email=i***@example.com&Name="
    assert inbox.get(recent).body == body and inbox.get(recent).purged_at is None
    assert purge_notifications(ledger, older_than=timedelta(days=90)) == 0  # once
    assert purge_notifications(ledger, older_than=timedelta(0)) == 1
    with pytest.raises(InvalidRequestError) as exc:
        purge_notifications(ledger, older_than=timedelta(days=-1))
    assert exc.value.field == "older_than"


def test_purge_masks_what_the_error_quotes(ledger: Ledger, clock: Clock) -> None:
    # Review finding: a refused body's error names what the sender chose (a repeated
    # field's name); the purge masked the body and left the error as it was.
    inbox = Inbox(ledger)
    refused = inbox.record(
        type="Pay", method="POST", body=b"ivan%40example.com=1&ivan%40example.com=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        remote_addr="203.0.113.1", signature_valid=False, outcome="refused",
        error="'ivan@example.com' is sent more than once").id
    plain = _record(inbox, b"TransactionId=1")
    clock.advance(timedelta(days=91))
    assert purge_notifications(ledger, older_than=timedelta(days=90)) == 2
    assert inbox.get(refused).error == "'***' is sent more than once"
    assert inbox.get(plain).error is None
    assert mask_error('"it\'s" from jane@example.com') == "'***' from ***"
