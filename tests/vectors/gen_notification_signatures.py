"""Write notification_signatures.json: signed deliveries and what a receiver must make of them.

Run from the repository root: ``python tests/vectors/gen_notification_signatures.py``.

Independent of checkout_kit on purpose, so the tests fed by the JSON can fail:

* every body is written here literally, byte for byte as a sender would send it;
* the URL-decoded message each ``X-Content-HMAC`` covers (docs/gateway.md §5.2) is
  written here by hand too, and cross-checked against a small decoder below that
  knows only "+ is a space, %XX is a byte";
* the MACs come from ``openssl dgst -sha256 -hmac`` (and ``-hex`` for the case that
  sends a hex digest where base64 belongs);
* the expected fields are written by hand.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("notification_signatures.json")
FORM = "application/x-www-form-urlencoded"
SECRET = "sk_test_7d0c5a1f"

CYRILLIC_BODY = (
    "TransactionId=1001&Amount=1500.00&Currency=RUB"
    "&Description=%D0%9E%D0%BF%D0%BB%D0%B0%D1%82%D0%B0+%D0%B7%D0%B0%D0%BA%D0%B0%D0%B7%D0%B0"
    "+%E2%84%9612&Name=%D0%98%D0%B2%D0%B0%D0%BD"
)
CYRILLIC_DECODED = (
    "TransactionId=1001&Amount=1500.00&Currency=RUB&Description=Оплата заказа №12&Name=Иван"
)
CYRILLIC_FIELDS = {
    "TransactionId": "1001", "Amount": "1500.00", "Currency": "RUB",
    "Description": "Оплата заказа №12", "Name": "Иван",
}

# name, type, method, content type, configured encoding, body, decoded text,
# signing secret, receiving secret, headers to send, expected verdict.
CASES: list[dict[str, Any]] = [
    {
        "name": "cyrillic-utf8-post", "type": "Pay", "method": "POST",
        "content_type": f"{FORM}; charset=utf-8", "encoding": "utf-8",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "both",
        "fields": CYRILLIC_FIELDS,
        "typed": {"transaction_id": 1001, "amount": "1500.00", "name": "Иван"},
    },
    {
        # `+` is a space, `%2B`/`%2b` a plus; `%26` and `%3D` stay inside the value.
        "name": "plus-percent2b-ampersand-equals-in-values", "type": "Check",
        "method": "POST", "content_type": FORM, "encoding": "utf-8",
        "body": "TransactionId=1002&Amount=10.00&Currency=RUB&Name=A%2BB+C"
                "&Description=x%3Dy%26z+%25+1%2b1&InvoiceId=a%3D%3D",
        "decoded": "TransactionId=1002&Amount=10.00&Currency=RUB&Name=A+B C"
                   "&Description=x=y&z % 1+1&InvoiceId=a==",
        "send": "both",
        "fields": {"TransactionId": "1002", "Amount": "10.00", "Currency": "RUB",
                   "Name": "A+B C", "Description": "x=y&z % 1+1", "InvoiceId": "a=="},
        "typed": {"invoice_id": "a==", "description": "x=y&z % 1+1"},
    },
    {
        # Signed, but a field name sent twice: no reader may pick one of the values.
        "name": "repeated-keys", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": "TransactionId=1003&Amount=5.00&AccountId=alice&AccountId=bob",
        "decoded": "TransactionId=1003&Amount=5.00&AccountId=alice&AccountId=bob",
        "send": "both", "failing_field": "AccountId",
    },
    {
        "name": "get-delivery", "type": "Pay", "method": "GET",
        "content_type": None, "encoding": "utf-8",
        "body": "TransactionId=1004&Amount=99.90&Currency=RUB"
                "&DateTime=2026-03-01+12%3A30%3A00&CardType=%D0%9C%D0%98%D0%A0",
        "decoded": "TransactionId=1004&Amount=99.90&Currency=RUB"
                   "&DateTime=2026-03-01 12:30:00&CardType=МИР",
        "send": "both",
        "fields": {"TransactionId": "1004", "Amount": "99.90", "Currency": "RUB",
                   "DateTime": "2026-03-01 12:30:00", "CardType": "МИР"},
        "typed": {"date_time": "2026-03-01T12:30:00+00:00", "card_type": "МИР"},
    },
    {
        # Percent-encoded Windows-1251 bytes; X-Content-HMAC over the text as UTF-8.
        "name": "windows-1251-post", "type": "Pay", "method": "POST",
        "content_type": f"{FORM}; charset=windows-1251", "encoding": "utf-8",
        "body": "TransactionId=1005&Amount=250.00&Currency=RUB"
                "&Description=%CE%EF%EB%E0%F2%E0+%B9+5&Name=%C8%E2%E0%ED",
        "decoded": "TransactionId=1005&Amount=250.00&Currency=RUB"
                   "&Description=Оплата № 5&Name=Иван",
        "decoded_charset": "cp1251", "send": "both",
        "fields": {"TransactionId": "1005", "Amount": "250.00", "Currency": "RUB",
                   "Description": "Оплата № 5", "Name": "Иван"},
        "typed": {"description": "Оплата № 5"},
    },
    {
        # GET has no Content-Type: the encoding configured for the type decides.
        "name": "windows-1251-get", "type": "Fail", "method": "GET",
        "content_type": None, "encoding": "windows-1251",
        "body": "TransactionId=1006&Amount=1.00&Reason=%CE%F2%EA%E0%E7&ReasonCode=5051",
        "decoded": "TransactionId=1006&Amount=1.00&Reason=Отказ&ReasonCode=5051",
        "decoded_charset": "cp1251", "send": "both",
        "fields": {"TransactionId": "1006", "Amount": "1.00", "Reason": "Отказ",
                   "ReasonCode": "5051"},
        "typed": {"reason_code": 5051, "reason": "Отказ"},
    },
    {
        "name": "cyrillic-secret", "type": "Confirm", "method": "POST",
        "content_type": FORM, "encoding": "utf-8", "secret": "ключ-секрет-№1",
        "body": "TransactionId=1007&Amount=0.01&Status=Completed",
        "decoded": "TransactionId=1007&Amount=0.01&Status=Completed",
        "send": "both",
        "fields": {"TransactionId": "1007", "Amount": "0.01", "Status": "Completed"},
        "typed": {"amount": "0.01", "status": "Completed"},
    },
    {
        "name": "content-hmac-only", "type": "Cancel", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": "TransactionId=1008&Amount=12.34&Email=a%40b.example",
        "decoded": "TransactionId=1008&Amount=12.34&Email=a@b.example", "send": "raw_only",
        "fields": {"TransactionId": "1008", "Amount": "12.34", "Email": "a@b.example"},
        "typed": {"email": "a@b.example"},
    },
    {
        "name": "x-content-hmac-only-lowercase-header", "type": "Refund", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": "TransactionId=1010&PaymentTransactionId=1001&Amount=500.00"
                "&OperationType=Refund&Data=%7B%22order%22%3A%2212%22%7D",
        "decoded": "TransactionId=1010&PaymentTransactionId=1001&Amount=500.00"
                   '&OperationType=Refund&Data={"order":"12"}',
        "send": "decoded_only_lowercase", "decoded_hmac_allowed": True,
        "fields": {"TransactionId": "1010", "PaymentTransactionId": "1001",
                   "Amount": "500.00", "OperationType": "Refund", "Data": '{"order":"12"}'},
        "typed": {"payment_transaction_id": 1001, "data": {"order": "12"}},
    },
    {
        # UNCONFIRMED delivery format (docs/gateway.md §5.1): raw UTF-8 JSON.
        "name": "json-body", "type": "Pay", "method": "POST",
        "content_type": "application/json; charset=utf-8", "encoding": "utf-8",
        "body": '{"TransactionId":1011,"Amount":10.50,"Currency":"RUB","Description":"Тест"}',
        "decoded": '{"TransactionId":1011,"Amount":10.50,"Currency":"RUB","Description":"Тест"}',
        "send": "both",
        "fields": {"TransactionId": "1011", "Amount": "10.50", "Currency": "RUB",
                   "Description": "Тест"},
        "typed": {"transaction_id": 1011, "amount": "10.50"},
    },
    {
        "name": "wrong-secret", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8", "receiver_secret": "sk_test_other",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "both",
        "failing_header": "Content-HMAC",
    },
    {
        "name": "wrong-secret-x-content-hmac-only", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8", "receiver_secret": "sk_test_other",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "decoded_only",
        "decoded_hmac_allowed": True, "failing_header": "X-Content-HMAC",
    },
    {
        # A right X-Content-HMAC alone is not enough unless the receiver opted out.
        "name": "x-content-hmac-only-refused-by-default", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "decoded_only",
        "failing_header": "Content-HMAC",
    },
    {
        # Each header carries the other's digest: both are wrong.
        "name": "headers-swapped", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "swapped",
        "failing_header": "Content-HMAC",
    },
    {
        "name": "decoded-digest-in-content-hmac-only", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "raw_header_decoded_mac",
        "failing_header": "Content-HMAC",
    },
    {
        "name": "hex-digest-in-content-hmac", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "hex",
        "failing_header": "Content-HMAC",
    },
    {
        "name": "hex-digest-in-x-content-hmac", "type": "Pay", "method": "GET",
        "content_type": None, "encoding": "utf-8",
        "body": CYRILLIC_BODY, "decoded": CYRILLIC_DECODED, "send": "hex_decoded_only",
        "decoded_hmac_allowed": True, "failing_header": "X-Content-HMAC",
    },
    {
        "name": "tampered-amount", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": "TransactionId=1012&Amount=1500.00&Currency=RUB",
        "decoded": "TransactionId=1012&Amount=1500.00&Currency=RUB", "send": "both",
        "received_body": "TransactionId=1012&Amount=1.00&Currency=RUB",
        "failing_header": "Content-HMAC",
    },
    {
        "name": "no-signature-headers", "type": "Pay", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": "TransactionId=1013&Amount=1.00", "decoded": "TransactionId=1013&Amount=1.00",
        "send": "none", "failing_header": None,
    },
]


# The forgery by re-encoding (issue 14 §2). A genuine Refund whose payer-typed Email
# holds "&TransactionId=777": sent percent-encoded, it is one field. Its decoded text,
# which X-Content-HMAC covers, is also the decoded text of a body in which that "&" is
# a separator: re-encoded so, the same X-Content-HMAC matches a body with a second
# TransactionId, and a last-value-wins reader applies the refund again under another
# key (Refund, 777). Content-HMAC, over the raw bytes, does not match it.
REFUND_BODY = (
    "TransactionId=2001&PaymentTransactionId=1001&Amount=50.00&Currency=RUB"
    "&OperationType=Refund&InvoiceId=order-77&Email=eve%40example.com%26TransactionId%3D777"
)
REFUND_DECODED = (
    "TransactionId=2001&PaymentTransactionId=1001&Amount=50.00&Currency=RUB"
    "&OperationType=Refund&InvoiceId=order-77&Email=eve@example.com&TransactionId=777"
)
REFUND_REENCODED = (
    "TransactionId=2001&PaymentTransactionId=1001&Amount=50.00&Currency=RUB"
    "&OperationType=Refund&InvoiceId=order-77&Email=eve%40example.com&TransactionId=777"
)
FORGERY = "re-encoded genuine Refund; its X-Content-HMAC still matches"
CASES += [
    {
        "name": "refund-genuine-email-holding-ampersand", "type": "Refund", "method": "POST",
        "content_type": FORM, "encoding": "utf-8",
        "body": REFUND_BODY, "decoded": REFUND_DECODED, "send": "both",
        "fields": {"TransactionId": "2001", "PaymentTransactionId": "1001",
                   "Amount": "50.00", "Currency": "RUB", "OperationType": "Refund",
                   "InvoiceId": "order-77", "Email": "eve@example.com&TransactionId=777"},
        "typed": {"transaction_id": 2001, "email": "eve@example.com&TransactionId=777"},
    },
    {
        "name": "refund-re-encoded-x-content-hmac-only", "type": "Refund", "method": "POST",
        "content_type": FORM, "encoding": "utf-8", "attack": FORGERY,
        "body": REFUND_BODY, "decoded": REFUND_DECODED, "send": "decoded_only",
        "received_body": REFUND_REENCODED, "failing_header": "Content-HMAC",
    },
    {
        # The shop opted out of Content-HMAC: the repeated name is still refused.
        "name": "refund-re-encoded-x-content-hmac-only-opted-out", "type": "Refund",
        "method": "POST", "content_type": FORM, "encoding": "utf-8", "attack": FORGERY,
        "body": REFUND_BODY, "decoded": REFUND_DECODED, "send": "decoded_only",
        "decoded_hmac_allowed": True, "received_body": REFUND_REENCODED,
        "failing_field": "TransactionId",
    },
    {
        "name": "refund-re-encoded-both-headers", "type": "Refund", "method": "POST",
        "content_type": FORM, "encoding": "utf-8", "attack": FORGERY,
        "body": REFUND_BODY, "decoded": REFUND_DECODED, "send": "both",
        "received_body": REFUND_REENCODED, "failing_header": "Content-HMAC",
    },
]


def mac(secret: str, message: bytes, *, hex_digest: bool = False) -> str:
    """HMAC-SHA256 by openssl: base64 of the binary digest, or the hex digest."""
    args = ["openssl", "dgst", "-sha256", "-hmac", secret]
    args += ["-hex"] if hex_digest else ["-binary"]
    out = subprocess.run(args, input=message, capture_output=True, check=True).stdout
    if hex_digest:
        return out.decode("ascii").rsplit("= ", 1)[-1].strip()
    return base64.b64encode(out).decode("ascii")


def plain_decode(body: str) -> bytes:
    """'+' is a space and '%XX' one byte; nothing else. A typo check on 'decoded'."""
    out = bytearray()
    i = 0
    while i < len(body):
        if body[i] == "%":
            out.append(int(body[i + 1:i + 3], 16))
            i += 3
        else:
            out += b" " if body[i] == "+" else body[i].encode("utf-8")
            i += 1
    return bytes(out)


def headers_for(
    case: dict[str, Any], raw_mac: str, decoded_mac: str, secret: str
) -> dict[str, str]:
    raw = case["body"].encode("utf-8")
    decoded = case["decoded"].encode("utf-8")
    return {
        "both": {"Content-HMAC": raw_mac, "X-Content-HMAC": decoded_mac},
        "raw_only": {"Content-HMAC": raw_mac},
        "decoded_only": {"X-Content-HMAC": decoded_mac},
        "decoded_only_lowercase": {"x-content-hmac": decoded_mac},
        "swapped": {"Content-HMAC": decoded_mac, "X-Content-HMAC": raw_mac},
        "raw_header_decoded_mac": {"Content-HMAC": decoded_mac},
        "hex": {"Content-HMAC": mac(secret, raw, hex_digest=True),
                "X-Content-HMAC": decoded_mac},
        "hex_decoded_only": {"X-Content-HMAC": mac(secret, decoded, hex_digest=True)},
        "none": {},
    }[case["send"]]


def declared_charset(content_type: str | None) -> str | None:
    """The charset a POST declares: it overrides the configured encoding."""
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset":
            return value
    return None


def build(case: dict[str, Any]) -> dict[str, Any]:
    secret = case.get("secret", SECRET)
    raw = case["body"].encode("utf-8")
    decoded = case["decoded"].encode("utf-8")
    charset = case.get("decoded_charset", "utf-8")
    if case.get("content_type", "") and "json" in case["content_type"]:
        assert raw == decoded
    else:
        assert plain_decode(case["body"]).decode(charset) == case["decoded"], case["name"]
    raw_mac, decoded_mac = mac(secret, raw), mac(secret, decoded)
    headers = headers_for(case, raw_mac, decoded_mac, secret)
    if case["content_type"]:
        headers["Content-Type"] = case["content_type"]
    received = case.get("received_body", case["body"]).encode("utf-8")
    if "attack" in case:
        # What makes it a forgery: other bytes, the same decoded text.
        assert received != raw and plain_decode(received.decode()) == decoded, case["name"]
    valid = "failing_header" not in case and "failing_field" not in case
    out: dict[str, Any] = {
        "name": case["name"],
        "type": case["type"],
        "method": case["method"],
        "encoding": case["encoding"],
        "text_encoding": declared_charset(case["content_type"]) or case["encoding"],
        "body_b64": base64.b64encode(received).decode("ascii"),
        "signed_body": case["body"],
        "decoded": case["decoded"],
        "secret": secret,
        "receiver_secret": case.get("receiver_secret", secret),
        "content_hmac": raw_mac,
        "x_content_hmac": decoded_mac,
        "headers": headers,
        "decoded_hmac_allowed": case.get("decoded_hmac_allowed", False),
        "valid": valid,
    }
    if "attack" in case:
        out["attack"] = case["attack"]
    if valid:
        out["fields"] = case["fields"]
        out["typed"] = case["typed"]
    elif "failing_field" in case:
        out["failing_field"] = case["failing_field"]
    else:
        out["failing_header"] = case["failing_header"]
    return out


def main() -> None:
    doc = {
        "description": (
            "Signed notification deliveries (docs/gateway.md §5.2) and the verdict of a "
            "receiver. body_b64 is the request body (POST) or raw query string (GET) as "
            "received; signed_body what was signed. decoded_hmac_allowed: the receiver "
            "opted out of requiring Content-HMAC. An invalid case names its failing_header "
            "(signature, 401) or failing_field (a field name sent twice, 400). "
            "content_hmac / x_content_hmac are "
            "base64(HMAC-SHA256(secret, ...)) over signed_body and over 'decoded' as UTF-8, "
            "made with openssl by gen_notification_signatures.py; 'decoded' and the fields "
            "are written by hand there."
        ),
        "cases": [build(c) for c in CASES],
    }
    OUT.write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", "utf-8")


if __name__ == "__main__":
    main()
