"""checkout_kit.notifications: HMAC signing/verification, bodies, typed parsing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from checkout_kit import notifications as nt
from checkout_kit.errors import MalformedNotificationError, SignatureVerificationError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "notifications.json")
                     .read_text("utf-8"))["vectors"]


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_sign_matches_independent_vectors(v: dict[str, Any]) -> None:
    headers = nt.sign(v["body"].encode("ascii"), v["secret"], encoding=v["encoding"])
    assert headers == {"Content-HMAC": v["content_hmac"], "X-Content-HMAC": v["x_content_hmac"]}


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_verify_accepts_each_header_alone_and_both(v: dict[str, Any]) -> None:
    raw = v["body"].encode("ascii")
    for headers in ({"Content-HMAC": v["content_hmac"]},
                    {"Content-HMAC": v["content_hmac"], "X-Content-HMAC": v["x_content_hmac"]}):
        nt.verify(raw, headers, v["secret"], encoding=v["encoding"])
    # X-Content-HMAC alone only for a receiver that opted out of Content-HMAC.
    decoded_only = {"x-content-hmac": v["x_content_hmac"]}
    with pytest.raises(SignatureVerificationError) as missing:
        nt.verify(raw, decoded_only, v["secret"], encoding=v["encoding"])
    assert missing.value.header == "Content-HMAC"
    nt.verify(raw, decoded_only, v["secret"], encoding=v["encoding"],
              require_content_hmac=False)
    with pytest.raises(SignatureVerificationError) as exc:
        nt.verify(raw, {"Content-HMAC": v["content_hmac"]}, v["secret"],
                  encoding=v["encoding"], require_both=True)
    assert exc.value.header == "X-Content-HMAC"


@pytest.mark.parametrize("v", VECTORS, ids=lambda v: v["name"])
def test_verify_rejects_wrong_secret_swapped_headers_and_tampering(v: dict[str, Any]) -> None:
    raw = v["body"].encode("ascii")
    with pytest.raises(SignatureVerificationError) as exc:
        nt.verify(raw, {"Content-HMAC": v["content_hmac"]}, v["secret"] + "x")
    assert exc.value.header == "Content-HMAC"
    if v["content_hmac"] != v["x_content_hmac"]:
        # the classic mistake: checking the decoded-string HMAC against the raw body
        with pytest.raises(SignatureVerificationError):
            nt.verify(raw, {"Content-HMAC": v["x_content_hmac"]}, v["secret"],
                      encoding=v["encoding"])
    with pytest.raises(SignatureVerificationError):
        nt.verify(raw + b"&x=1", {"Content-HMAC": v["content_hmac"],
                                  "X-Content-HMAC": v["x_content_hmac"]}, v["secret"],
                  encoding=v["encoding"])


def test_verify_without_headers_and_with_garbage() -> None:
    with pytest.raises(SignatureVerificationError) as exc:
        nt.verify(b"a=1", {}, "s")
    assert exc.value.header is None
    with pytest.raises(SignatureVerificationError):
        nt.verify(b"a=1", {"Content-HMAC": "ключ"}, "s")
    with pytest.raises(SignatureVerificationError):
        # not UTF-8 once decoded
        nt.verify(b"a=%FF", {"X-Content-HMAC": "x"}, "s", require_content_hmac=False)


@pytest.mark.parametrize("v", [v for v in VECTORS if "fields" in v], ids=lambda v: v["name"])
def test_parse_fields_decodes_as_the_vectors_say(v: dict[str, Any]) -> None:
    fields = nt.parse_fields(v["body"].encode("ascii"), encoding=v["encoding"])
    assert {k: fields[k] for k in v["fields"]} == v["fields"]


def test_encode_then_parse_round_trip_in_both_encodings() -> None:
    fields = {"TransactionId": 5, "Amount": Decimal("10.5"), "Description": "Чай & кофе + ещё",
              "TestMode": True, "DateTime": datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
              "Data": {"a": [1, "б"]}, "Skipped": None}
    for encoding in ("UTF8", "Windows1251"):
        body = nt.encode_body(fields, encoding)
        note = nt.parse_notification("Pay", body, encoding=encoding)
        assert note.amount == Decimal("10.50") and note.transaction_id == 5
        assert note.description == "Чай & кофе + ещё" and note.test_mode is True
        assert note.date_time == datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
        assert note.data == {"a": [1, "б"]} and "Skipped" not in note.fields
        nt.verify(body, nt.sign(body, "k", encoding=encoding), "k", encoding=encoding,
                  require_both=True)


def test_typed_values_for_every_type() -> None:
    refund = nt.parse_notification("refund", {"TransactionId": "9", "PaymentTransactionId": "8",
                                              "Amount": "3.00", "OperationType": "Refund"})
    assert refund.type is nt.NotificationType.REFUND and refund.payment_transaction_id == 8
    fail = nt.parse_notification(nt.NotificationType.FAIL, {"TransactionId": "1", "Amount": "1",
                                                            "ReasonCode": "5051", "Reason": "x"})
    assert fail.reason_code == 5051 and fail.dedupe_key == ("Fail", "1")
    recurrent = nt.parse_notification("Recurrent", {
        "Id": "sc_1", "Status": "PastDue", "RequireConfirmation": "False", "Period": "1",
        "FailedTransactionsNumber": "2", "NextTransactionDate": "2025-02-01 00:00:00"})
    assert recurrent.require_confirmation is False and recurrent.failed_transactions_number == 2
    assert recurrent.next_transaction_date == datetime(2025, 2, 1, tzinfo=UTC)
    assert recurrent.dedupe_key == ("Recurrent", "sc_1:PastDue")


@pytest.mark.parametrize(("text", "expected"), [
    ("2025-02-01 10:00:00", datetime(2025, 2, 1, 10, tzinfo=UTC)),
    ("2025-02-01", datetime(2025, 2, 1, tzinfo=UTC)),
    ("2025-02-01T13:00:00+03:00", datetime(2025, 2, 1, 10, tzinfo=UTC)),
])
def test_dates_are_always_aware_utc(text: str, expected: datetime) -> None:
    pay = nt.parse_notification("Pay", {"TransactionId": "1", "Amount": "1", "DateTime": text})
    assert pay.date_time == expected
    assert pay.date_time is not None and pay.date_time.utcoffset() is not None
    assert pay.date_time.tzinfo is UTC


@pytest.mark.parametrize("kind,fields,field", [
    ("Pay", {"Amount": "1"}, "TransactionId"),
    ("Pay", {"TransactionId": "x", "Amount": "1"}, "TransactionId"),
    ("Pay", {"TransactionId": "1", "Amount": "NaN"}, "Amount"),
    ("Refund", {"TransactionId": "1", "Amount": "1"}, "PaymentTransactionId"),
    ("Recurrent", {"Id": "sc"}, "Status"),
    ("Pay", {"TransactionId": "1", "Amount": "1", "TestMode": "maybe"}, "TestMode"),
    ("Pay", {"TransactionId": "1", "Amount": "1", "Data": "{"}, "Data"),
])
def test_malformed_notifications(kind: str, fields: dict[str, str], field: str) -> None:
    with pytest.raises(MalformedNotificationError) as exc:
        nt.parse_notification(kind, fields)
    assert exc.value.field == field


def test_unknown_type_encoding_and_bad_bytes() -> None:
    with pytest.raises(MalformedNotificationError):
        nt.parse_notification("Payout", {})
    with pytest.raises(ValueError):
        nt.codec_for("koi8-r")
    with pytest.raises(MalformedNotificationError):
        nt.parse_fields(b"a=%D0", encoding="utf-8")
    assert nt.parse_fields(b'{"TransactionId": 1, "Amount": 1.50}',
                           content_type="application/json") == {"TransactionId": "1",
                                                                "Amount": "1.50"}


def test_check_answer_table() -> None:
    assert nt.check_reason(0) is None
    assert {code: nt.check_reason(code) for code in (10, 11, 12, 13, 20)} == {
        10: 3001, 11: 3002, 12: 3003, 13: 3008, 20: 3004}
    assert nt.check_reason(1) == nt.check_reason(None) == 3005


@given(st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=20), max_size=6),
       st.sampled_from(["utf-8", "Windows1251"]), st.text(min_size=1, max_size=12))
def test_signatures_survive_any_body(fields: dict[str, str], encoding: str, secret: str) -> None:
    if encoding == "Windows1251":
        fields = {k.encode("cp1251", "replace").decode("cp1251"):
                  v.encode("cp1251", "replace").decode("cp1251") for k, v in fields.items()}
    body = nt.encode_body(fields, encoding)
    headers = nt.sign(body, secret, encoding=encoding)
    nt.verify(body, headers, secret, encoding=encoding, require_both=True)
    assert nt.parse_fields(body, encoding=encoding) == fields


def test_repr_masks_the_payers_details() -> None:
    note = nt.parse_notification("Pay", {
        "TransactionId": "42", "Amount": "10.00", "Token": "tk_255c42192323f2e09ea17635302c3",
        "Email": "ivan.petrov@example.com", "Name": "IVAN PETROV", "IpAddress": "203.0.113.7",
        "Data": '{"phone":"+79991234567"}', "CardFirstSix": "424242",
    })
    text = repr(note)
    for secret in ("255c42192323f2e09ea1763", "ivan.petrov", "PETROV", "203.0.113", "79991234567"):
        assert secret not in text
    assert "tk_255…02c3" in text and "424242" in text and "transaction_id=42" in text
    assert note.email == "ivan.petrov@example.com"  # the attribute itself is intact


def test_data_objects_keep_exact_numbers() -> None:
    data = {"amount": Decimal("1.50"), "items": [1, "x", None, True]}
    assert nt.format_value(data) == '{"amount":1.50,"items":[1,"x",null,true]}'
    body = nt.encode_body({"TransactionId": 1, "Amount": Decimal("1"), "Data": data})
    assert nt.parse_notification("Pay", body).data == data


@pytest.mark.parametrize("value", [
    "1E9999999", "1E+19", "NaN", "Infinity", "1.5",
    # 19 digits, beyond 2**63 - 1: no gateway id, and no fit for the ledger's BIGINT
    # (a signed notification carrying one was answered 500, not 400).
    "9999999999999999999", "9223372036854775808", "-9223372036854775809",
])
def test_ids_beyond_64_bits_or_not_integers_are_malformed(value: str) -> None:
    body = f"TransactionId={value}&Amount=1.00&Currency=RUB&DateTime=2026-01-01 00:00:00".encode()
    with pytest.raises(MalformedNotificationError) as exc:
        nt.parse_notification("Pay", body)
    assert exc.value.field == "TransactionId"


@pytest.mark.parametrize("kind,wire", [
    ("Pay", "TransactionId"), ("Refund", "PaymentTransactionId"), ("Pay", "ReasonCode"),
])
def test_the_largest_64_bit_id_is_taken_and_the_next_refused(kind: str, wire: str) -> None:
    fields = {"TransactionId": "5", "PaymentTransactionId": "4", "Amount": "1.00"}
    largest = nt.parse_notification(kind, fields | {wire: str(2**63 - 1)})
    assert 2**63 - 1 in (largest.transaction_id, largest.payment_transaction_id,
                         largest.reason_code)
    with pytest.raises(MalformedNotificationError) as exc:
        nt.parse_notification(kind, fields | {wire: str(2**63)})
    assert exc.value.field == wire


# --------------------------------------------------------------------------- Receipt, filled fields


def test_receipt_is_parsed_with_every_field_optional() -> None:
    note = nt.parse_notification("receipt", {
        "DocumentNumber": "7", "SessionNumber": "12", "FiscalSign": "2778489032",
        "DeviceNumber": "1002", "RegNumber": "0000000001046735", "Inn": "7708806062",
        "Type": "IncomeReturn", "Ofd": "Taxcom", "Url": "https://receipts.test/7",
        "QrCodeUrl": "https://qr.test/7", "Amount": "10.50", "DateTime": "2026-03-01 10:00:00",
        "Receipt": '{"Items":[{"label":"Tea","price":10.50}]}', "InvoiceId": "A-1"})
    assert note.type is nt.NotificationType.RECEIPT
    assert (note.document_number, note.receipt_type, note.fiscal_sign, note.inn) == (
        "7", "IncomeReturn", "2778489032", "7708806062")
    assert note.amount == Decimal("10.50") and note.transaction_id is None
    assert note.receipt == {"Items": [{"label": "Tea", "price": Decimal("10.50")}]}
    assert note.dedupe_key == ("Receipt", "2778489032:FiscalSign:0000000001046735")
    assert note.receipt_id == "7"
    assert "Tea" not in repr(note)  # the receipt may name the buyer: hidden
    text = nt.parse_notification("Receipt", {"TransactionId": "42", "Receipt": "not json"})
    assert text.receipt == "not json" and text.receipt_id == "42"


def test_two_refund_receipts_of_one_payment_are_two_events() -> None:
    # Two partial refunds of payment 42: same TransactionId and Type, two fiscal documents.
    base = {"TransactionId": "42", "Type": "IncomeReturn", "Amount": "1.00"}
    schemes = [
        ({"FiscalSign": "2778489032"}, {"FiscalSign": "1187342911"}),
        ({"DocumentNumber": "7", "RegNumber": "0000000001046735"},
         {"DocumentNumber": "8", "RegNumber": "0000000001046735"}),
        ({"DocumentNumber": "7", "FiscalNumber": "9999078900004312"},
         {"DocumentNumber": "8", "FiscalNumber": "9999078900004312"}),
    ]
    for first, second in schemes:
        one = nt.parse_notification("Receipt", {**base, **first})
        other = nt.parse_notification("Receipt", {**base, **second})
        again = nt.parse_notification("Receipt", {**base, **first, "Url": "https://r.test/1"})
        assert one.dedupe_key != other.dedupe_key
        assert one.dedupe_key == again.dedupe_key  # a second delivery is the same event
    # Without any fiscal field the TransactionId and Type are all there is.
    bare = nt.parse_notification("Receipt", base)
    assert bare.dedupe_key == ("Receipt", "42:Type:IncomeReturn")
    assert nt.receipt_key({"DocumentNumber": "7", "Type": "Income"}) == ("7", "Type:Income")


def test_a_receipt_needs_an_id() -> None:
    with pytest.raises(MalformedNotificationError, match="TransactionId or DocumentNumber") as e:
        nt.parse_notification("Receipt", {"Type": "Income", "Amount": "1.00"})
    assert e.value.field == "TransactionId"


def test_fields_the_gateway_fills_are_typed_and_the_place_hidden() -> None:
    note = nt.parse_notification("Pay", {
        "TransactionId": "5", "Amount": "1.00", "CardId": "c0ffee", "CardProduct": "Visa Classic",
        "Rrn": "123456789012", "PaymentMethod": "Card", "IpCountry": "RU", "IpCity": "Уфа",
        "IpRegion": "Республика Башкортостан", "IpDistrict": "Приволжский федеральный округ",
        "IpLatitude": "54.7355", "IpLongitude": "55.99182", "TrInitiatorCode": "0",
        "PaymentScheduled": "1"})
    assert (note.card_id, note.card_product, note.rrn, note.payment_method) == (
        "c0ffee", "Visa Classic", "123456789012", "Card")
    assert (note.ip_country, note.ip_latitude, note.ip_longitude) == (
        "RU", Decimal("54.7355"), Decimal("55.99182"))
    assert (note.tr_initiator_code, note.payment_scheduled) == (0, True)
    shown = repr(note)
    assert "Уфа" not in shown and "54.7355" not in shown and "Приволжский" not in shown
    with pytest.raises(MalformedNotificationError) as bad:
        nt.parse_notification("Pay", {"TransactionId": "5", "Amount": "1", "IpLatitude": "north"})
    assert bad.value.field == "IpLatitude"


def test_a_receipt_field_of_another_shape_stays_text() -> None:
    note = nt.parse_notification("Receipt", {"TransactionId": "9" * 40, "Amount": "ten",
                                             "Type": " Income "})
    assert note.transaction_id is None and note.amount is None  # not typed, not refused
    assert note.receipt_id == "9" * 40 and note.fields["Amount"] == "ten"
    with pytest.raises(MalformedNotificationError):  # the other types stay strict
        nt.parse_notification("Pay", {"TransactionId": "9" * 40, "Amount": "1"})
