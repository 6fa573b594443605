"""Typed values for what the CloudPayments API returns (docs/gateway.md §3.4, §3.5, §1.7).

Every model is a frozen dataclass built by ``from_api(model)`` from the JSON ``Model``
object the gateway sends, and keeps that object as ``raw`` for fields we do not type.
The module is pure (no httpx, no Flask): the client, the sandbox and the Flask
extension all share it.

Parsing rules, the same for every model:

* amounts become :class:`~decimal.Decimal` (answers should be read with
  :func:`checkout_kit.jsoncodec.loads`; a float that slips through is converted
  through its shortest repr, never through binary arithmetic);
* dates become aware UTC datetimes, from ``"/Date(<ms>)/"`` or from ISO text
  (``yyyy-MM-ddTHH:mm:ss``, which the gateway writes in UTC: in the docs/gateway.md §3.4
  examples ``CreatedDate`` and ``CreatedDateIso`` agree as UTC);
* an enum value we do not know (a new ``Status``, a new ``ReasonCode``) is kept as the
  raw string or int instead of raising, so a gateway update cannot break a shop;
* a missing *required* field (``TransactionId`` on a transaction...) raises
  :class:`ValueError`: the client turns that into the right gateway error.

Reprs show card tokens, e-mail addresses, names, phone numbers and IP addresses only
masked (``mask_token``, ``mask_email``, ``mask_name``, ``mask_phone``, ``mask_ip``),
and leave out free-form data (``JsonData``, receipts, ``PaReq``, the raw model).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from . import jsoncodec
from .errors import JSONCodecError
from .money import CURRENCIES, quantize
from .reasons import Reason, ReasonCode, reason_for

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "CardToken",
    "Interval",
    "NotificationSettings",
    "Order",
    "PublicKeyInfo",
    "Refund",
    "Subscription",
    "SubscriptionStatus",
    "ThreeDSChallenge",
    "TrInitiator",
    "Transaction",
    "TransactionStatus",
    "as_reason_code",
    "is_three_ds_model",
    "mask_email",
    "mask_ip",
    "mask_name",
    "mask_phone",
    "mask_token",
    "parse_api_datetime",
]

#: The range of a gateway id: the ledger keeps ids in 64-bit signed (BIGINT) columns.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class TransactionStatus(enum.StrEnum):
    """``Model.Status`` of a transaction (docs/gateway.md §3.4)."""

    AWAITING_AUTHENTICATION = "AwaitingAuthentication"
    AUTHORIZED = "Authorized"
    COMPLETED = "Completed"
    CANCELLED = "Cancelled"
    DECLINED = "Declined"


class TrInitiator(enum.IntEnum):
    """``TrInitiatorCode`` of a token payment: who started it (docs/gateway.md §3.5).

    The gateway requires it; a merchant-initiated charge (a subscription, a top-up, a
    delayed charge) mislabelled as cardholder-initiated misinforms the issuer.
    """

    #: the shop charges the saved card on its own (set ``PaymentScheduled`` when the
    #: charge follows a schedule)
    MERCHANT = 0
    #: the cardholder is present and asked for this payment
    CARDHOLDER = 1


class SubscriptionStatus(enum.StrEnum):
    """``Model.Status`` of a subscription (docs/gateway.md §3.5)."""

    ACTIVE = "Active"
    PAST_DUE = "PastDue"
    CANCELLED = "Cancelled"
    REJECTED = "Rejected"
    EXPIRED = "Expired"


class Interval(enum.StrEnum):
    """Subscription period unit (docs/gateway.md §3.5)."""

    DAY = "Day"
    WEEK = "Week"
    MONTH = "Month"


_E = TypeVar("_E", bound=enum.StrEnum)

# "/Date(1635564719715)/" and the .NET variant with an offset, "/Date(1635564719715+0300)/";
# the milliseconds are UTC in both (the offset only says where the writer was).
_MS_DATE = re.compile(r"^/Date\((-?\d+)(?:[+-]\d{4})?\)/$")


def parse_api_datetime(value: object) -> datetime | None:
    """An aware UTC datetime from the gateway's ``/Date(ms)/`` or ISO text.

    ``None`` and ``""`` give ``None``. ISO text without an offset is taken as UTC
    (docs/gateway.md §3.4). Anything else raises :class:`ValueError`.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):  # text is what the gateway sends: checked first
        if isinstance(value, datetime):
            return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        if isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
        raise ValueError(f"not a date: {type(value).__name__}")
    match = _MS_DATE.match(value.strip())
    if match:
        try:
            return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):  # beyond what a datetime holds
            raise ValueError(f"not a date: {value[:40]!r}") from None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"not a date: {value[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def mask_token(token: str | None) -> str | None:
    """A card token shortened for logs and reprs (``tk_255c…02c3``)."""
    if token is None:
        return None
    return token[:6] + "…" + token[-4:] if len(token) > 12 else "…"


def mask_email(email: str) -> str:
    """An e-mail address for logs and reprs: the first character and the domain
    (``u…@example.com``)."""
    local, at, domain = email.rpartition("@")
    if not at or not local:
        return "…"
    return local[0] + "…@" + domain


def mask_name(name: str) -> str:
    """A person's name for logs and reprs: the initials (``I… P…``)."""
    return " ".join(word[0] + "…" for word in name.split()) or "…"


def mask_phone(phone: str) -> str:
    """A phone number for logs and reprs: its last two digits (``…67``)."""
    digits = [c for c in phone if c.isdigit()]
    return "…" + "".join(digits[-2:]) if len(digits) > 6 else "…"


def mask_ip(address: str) -> str:
    """An IP address for logs and reprs: its network only (``203.0.*.*``,
    ``2001:db8:…``)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return "…"
    if isinstance(ip, ipaddress.IPv4Address):
        return ".".join(str(ip).split(".")[:2]) + ".*.*"
    return ":".join(ip.exploded.split(":")[:2]) + ":…"


def _masked(mask: Callable[[str], str | None]) -> dict[str, Callable[[str], str | None]]:
    """Field metadata: the field is shown in the repr only through ``mask``."""
    return {"mask": mask}


_D = TypeVar("_D")


def _masked_repr(cls: type[_D]) -> type[_D]:
    """Give a model dataclass a repr that shows its fields marked ``_masked`` only
    masked (and, as any dataclass repr, leaves out those with ``repr=False``)."""

    def __repr__(self: Any) -> str:
        shown = []
        for item in fields(self):
            if not item.repr:
                continue
            value = getattr(self, item.name)
            mask = item.metadata.get("mask")
            if mask is not None and isinstance(value, str):
                value = mask(value)
            shown.append(f"{item.name}={value!r}")
        return f"{type(self).__qualname__}({', '.join(shown)})"

    cls.__repr__ = __repr__  # type: ignore[method-assign]
    return cls


def is_three_ds_model(model: object) -> bool:
    """The client rule of docs/gateway.md §3.4: a 3-D Secure answer has ``AcsUrl`` and ``PaReq``."""
    return (
        isinstance(model, Mapping)
        and isinstance(model.get("AcsUrl"), str)
        and bool(model.get("AcsUrl"))
        and isinstance(model.get("PaReq"), str)
        and bool(model.get("PaReq"))
    )


# --- field readers --------------------------------------------------------------------


def _require(model: Mapping[str, Any], key: str) -> Any:
    value = model.get(key)
    if value is None or value == "":
        raise ValueError(f"the gateway's model has no {key}")
    return value


def _str(model: Mapping[str, Any], key: str) -> str | None:
    value = model.get(key)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    raise ValueError(f"{key} is not text")


def _int_value(key: str, value: object) -> int:
    number = _any_int(key, value)
    # The ledger keeps ids in BIGINT columns: 19 digits above INT64_MAX are no id.
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{key} is not a 64-bit integer")
    return number


def _any_int(key: str, value: object) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{key} is not an integer")
    if isinstance(value, int):
        return value
    if (isinstance(value, Decimal) and not (value.is_finite() and value.adjusted() < 19)) or (
        isinstance(value, float) and not abs(value) < 2**63  # NaN too
    ):
        raise ValueError(f"{key} is not an integer")  # (1e100000000 would take seconds)
    if isinstance(value, Decimal | float) and value == int(value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value.strip()):
        return int(value)
    raise ValueError(f"{key} is not an integer")


def _int(model: Mapping[str, Any], key: str) -> int | None:
    value = model.get(key)
    if value is None or value == "":
        return None
    return _int_value(key, value)


def _bool(model: Mapping[str, Any], key: str, default: bool = False) -> bool:
    value = model.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise ValueError(f"{key} is not a boolean")


def _opt_bool(model: Mapping[str, Any], key: str) -> bool | None:
    return None if model.get(key) is None else _bool(model, key)


def _decimal_value(key: str, value: object, currency: str | None) -> Decimal:
    if isinstance(value, bool):
        raise ValueError(f"{key} is not an amount")
    try:
        if isinstance(value, Decimal):
            amount = value
        elif isinstance(value, int):
            amount = Decimal(value)
        elif isinstance(value, float):
            # Only reached when the caller read the JSON with a float parser; the
            # shortest repr is the number the gateway wrote.
            amount = Decimal(repr(value))
        elif isinstance(value, str):
            amount = Decimal(value.strip())
        else:
            raise ValueError(f"{key} is not an amount")
    except InvalidOperation:
        raise ValueError(f"{key} is not an amount") from None
    if not amount.is_finite():
        raise ValueError(f"{key} is not a finite amount")
    if currency is not None and currency.upper() in CURRENCIES:
        quantized = quantize(amount, currency)
        if quantized == amount:  # never round away what the gateway sent
            return quantized
    return amount


def _decimal(model: Mapping[str, Any], key: str, currency: str | None) -> Decimal | None:
    value = model.get(key)
    if value is None or value == "":
        return None
    return _decimal_value(key, value, currency)


def _amount_and_currency(model: Mapping[str, Any]) -> tuple[Decimal, str]:
    currency = _str(model, "Currency") or "RUB"
    amount = _decimal(model, "Amount", currency)
    if amount is None:
        raise ValueError("the gateway's model has no Amount")
    return amount, currency


def _date(model: Mapping[str, Any], key: str) -> datetime | None:
    """``Key`` (``/Date(ms)/``, exact to the millisecond) or else ``KeyIso``."""
    value = parse_api_datetime(model.get(key))
    return value if value is not None else parse_api_datetime(model.get(key + "Iso"))


def _enum(cls: type[_E], value: object) -> _E | str | None:
    if value is None or value == "":
        return None
    text = str(value)
    try:
        return cls(text)
    except ValueError:  # a value newer than this library is kept as text
        return text


def as_reason_code(value: object) -> ReasonCode | int:
    """A ``ReasonCode`` member for a known code, the plain int for an unknown one
    (``None``/``""`` mean 0, approved); :class:`ValueError` if not an integer."""
    if value is None or value == "":
        return 0
    code = _int_value("ReasonCode", value)
    try:
        return ReasonCode(code)
    except ValueError:  # a code newer than this library is kept as the int
        return code


def _initiator(code: int | None) -> TrInitiator | int | None:
    """A :class:`TrInitiator` member, or the int the gateway sent when it is new."""
    if code is None:
        return None
    try:
        return TrInitiator(code)
    except ValueError:
        return code


def _json_data(value: object) -> Any:
    # The gateway echoes JsonData as a JSON *string* ("{\"Phone\": ...}"); hand back the
    # object the shop sent when it decodes to one, else the value as it came.
    if value == "":
        return None
    if isinstance(value, str):
        try:
            decoded = jsoncodec.loads(value)
        except JSONCodecError:
            return value
        return decoded if isinstance(decoded, dict | list) else value
    return value


def _as_mapping(model: object, what: str) -> Mapping[str, Any]:
    if not isinstance(model, Mapping):
        raise ValueError(f"the gateway's {what} model is not an object")
    return model


# --- models ---------------------------------------------------------------------------


@_masked_repr
@dataclass(frozen=True)
class Transaction:
    """A payment, refund or payout as the gateway describes it (docs/gateway.md §3.4)."""

    transaction_id: int
    amount: Decimal
    currency: str
    status: TransactionStatus | str | None
    status_code: int | None = None
    #: ``None`` while the payment is still in progress (``AwaitingAuthentication``):
    #: it has no outcome yet, approved or declined
    reason_code: ReasonCode | int | None = 0
    reason: str | None = None
    cardholder_message: str | None = None
    invoice_id: str | None = None
    account_id: str | None = None
    email: str | None = field(default=None, metadata=_masked(mask_email))
    description: str | None = None
    json_data: Any = field(default=None, repr=False, hash=False)
    created_at: datetime | None = None
    auth_at: datetime | None = None
    confirm_at: datetime | None = None
    payout_at: datetime | None = None
    card_first_six: str | None = None
    card_last_four: str | None = None
    card_exp_date: str | None = None
    card_type: str | None = None
    card_type_code: int | None = None
    token: str | None = field(default=None, metadata=_masked(mask_token))
    test_mode: bool = False
    refunded: bool = False
    subscription_id: str | None = None
    name: str | None = field(default=None, metadata=_masked(mask_name))
    ip_address: str | None = field(default=None, metadata=_masked(mask_ip))
    auth_code: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    original_transaction_id: int | None = None
    type: int | None = None
    issuer: str | None = None
    issuer_bank_country: str | None = None
    gateway_name: str | None = None
    culture_name: str | None = None
    public_id: str | None = None
    escrow_accumulation_id: str | None = None
    tr_initiator_code: TrInitiator | int | None = None
    payment_scheduled: bool | None = None
    rrn: str | None = None
    card_product: str | None = None
    card_category: str | None = None
    payment_method: str | None = None
    ip_country: str | None = None
    # Where the payer is: kept out of the repr, like the address it was found from.
    ip_region: str | None = field(default=None, repr=False)
    ip_city: str | None = field(default=None, repr=False)
    ip_district: str | None = field(default=None, repr=False)
    ip_latitude: Decimal | None = field(default=None, repr=False)
    ip_longitude: Decimal | None = field(default=None, repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> Transaction:
        """Build from the gateway's transaction ``Model``; :class:`ValueError` if malformed."""
        m = _as_mapping(model, "transaction")
        amount, currency = _amount_and_currency(m)
        payment_currency = _str(m, "PaymentCurrency")
        status = _enum(TransactionStatus, m.get("Status"))
        in_progress = status == TransactionStatus.AWAITING_AUTHENTICATION and (
            m.get("ReasonCode") is None or m.get("ReasonCode") == "")
        return cls(
            transaction_id=_int_value("TransactionId", _require(m, "TransactionId")),
            amount=amount,
            currency=currency,
            status=status,
            status_code=_int(m, "StatusCode"),
            reason_code=None if in_progress else as_reason_code(m.get("ReasonCode")),
            reason=_str(m, "Reason"),
            cardholder_message=_str(m, "CardHolderMessage"),
            invoice_id=_str(m, "InvoiceId"),
            account_id=_str(m, "AccountId"),
            email=_str(m, "Email"),
            description=_str(m, "Description"),
            json_data=_json_data(m.get("JsonData")),
            created_at=_date(m, "CreatedDate"),
            auth_at=_date(m, "AuthDate"),
            confirm_at=_date(m, "ConfirmDate"),
            payout_at=_date(m, "PayoutDate"),
            card_first_six=_str(m, "CardFirstSix"),
            card_last_four=_str(m, "CardLastFour"),
            card_exp_date=_str(m, "CardExpDate"),
            card_type=_str(m, "CardType"),
            card_type_code=_int(m, "CardTypeCode"),
            token=_str(m, "Token"),
            test_mode=_bool(m, "TestMode"),
            refunded=_bool(m, "Refunded"),
            subscription_id=_str(m, "SubscriptionId"),
            name=_str(m, "Name"),
            ip_address=_str(m, "IpAddress"),
            auth_code=_str(m, "AuthCode"),
            payment_amount=_decimal(m, "PaymentAmount", payment_currency or currency),
            payment_currency=payment_currency,
            original_transaction_id=_int(m, "OriginalTransactionId"),
            type=_int(m, "Type"),
            issuer=_str(m, "Issuer"),
            issuer_bank_country=_str(m, "IssuerBankCountry"),
            gateway_name=_str(m, "GatewayName"),
            culture_name=_str(m, "CultureName"),
            public_id=_str(m, "PublicId"),
            escrow_accumulation_id=_str(m, "EscrowAccumulationId"),
            tr_initiator_code=_initiator(_int(m, "TrInitiatorCode")),
            payment_scheduled=_opt_bool(m, "PaymentScheduled"),
            rrn=_str(m, "Rrn"),
            card_product=_str(m, "CardProduct"),
            card_category=_str(m, "CardCategory"),
            payment_method=_str(m, "PaymentMethod"),
            ip_country=_str(m, "IpCountry"),
            ip_region=_str(m, "IpRegion"),
            ip_city=_str(m, "IpCity"),
            ip_district=_str(m, "IpDistrict"),
            ip_latitude=_decimal(m, "IpLatitude", None),
            ip_longitude=_decimal(m, "IpLongitude", None),
            raw=dict(m),
        )

    @property
    def in_progress(self) -> bool:
        """Still waiting for 3-D Secure: neither approved nor declined yet."""
        return self.status == TransactionStatus.AWAITING_AUTHENTICATION

    @property
    def is_declined(self) -> bool:
        """Declined by the gateway or the issuer (``Status`` ``Declined``)."""
        return self.status == TransactionStatus.DECLINED

    @property
    def reason_info(self) -> Reason | None:
        """The reason-table row for :attr:`reason_code` (a generic row if unknown);
        ``None`` while the payment has no outcome yet."""
        return None if self.reason_code is None else reason_for(int(self.reason_code))

    @property
    def token_hint(self) -> str | None:
        """The card token shortened for display; the full value is :attr:`token`."""
        return mask_token(self.token)


@_masked_repr
@dataclass(frozen=True)
class ThreeDSChallenge:
    """The payment needs 3-D Secure (docs/gateway.md §3.4 case 2, §4).

    Send the payer's browser to :attr:`acs_url` with a POST form of ``PaReq`` =
    :attr:`pa_req`, ``MD`` = :attr:`transaction_id` and ``TermUrl``; the bank posts
    ``MD`` and ``PaRes`` back to ``TermUrl``; finish with
    ``client.post3ds(transaction_id, pa_res)``. The ``IFrame``/``Frame*`` values are
    hints for showing the bank page in an iframe (their semantics are UNCONFIRMED).
    """

    transaction_id: int
    acs_url: str
    pa_req: str = field(repr=False)
    #: lets anyone finish the 3-D Secure step: masked in the repr, as ``CallbackMD``'s
    three_ds_callback_id: str | None = field(default=None, metadata=_masked(mask_token))
    iframe_is_allowed: bool | None = None
    frame_width: int | None = None
    frame_height: int | None = None
    go_req: str | None = field(default=None, repr=False)
    three_ds_session_data: str | None = field(default=None, repr=False)
    escrow_accumulation_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> ThreeDSChallenge:
        """Build from a 3-D Secure ``Model``; :class:`ValueError` if it is not one."""
        m = _as_mapping(model, "3-D Secure")
        if not is_three_ds_model(m):
            raise ValueError("the gateway's model has no AcsUrl/PaReq")
        return cls(
            transaction_id=_int_value("TransactionId", _require(m, "TransactionId")),
            acs_url=str(m["AcsUrl"]),
            pa_req=str(m["PaReq"]),
            three_ds_callback_id=_str(m, "ThreeDsCallbackId"),
            iframe_is_allowed=_opt_bool(m, "IFrameIsAllowed"),
            frame_width=_int(m, "FrameWidth"),
            frame_height=_int(m, "FrameHeight"),
            go_req=_str(m, "GoReq"),
            three_ds_session_data=_str(m, "ThreeDsSessionData"),
            escrow_accumulation_id=_str(m, "EscrowAccumulationId"),
            raw=dict(m),
        )

    @property
    def md(self) -> str:
        """The ``MD`` form value: the transaction id as text."""
        return str(self.transaction_id)


@_masked_repr
@dataclass(frozen=True)
class Refund:
    """A refund was accepted; it has its own transaction id (docs/gateway.md §3.5)."""

    transaction_id: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> Refund:
        """Build from the refund ``Model`` (``{TransactionId}``)."""
        m = _as_mapping(model, "refund")
        return cls(_int_value("TransactionId", _require(m, "TransactionId")), raw=dict(m))


@_masked_repr
@dataclass(frozen=True)
class CardToken:
    """One saved card from ``/payments/tokens/list`` (docs/gateway.md §3.5)."""

    token: str = field(metadata=_masked(mask_token))
    account_id: str | None
    card_mask: str | None = None
    exp_month: int | None = None
    exp_year: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> CardToken:
        """Build from one item of the tokens list."""
        m = _as_mapping(model, "token")
        return cls(
            token=str(_require(m, "Token")),
            account_id=_str(m, "AccountId"),
            card_mask=_str(m, "CardMask"),
            exp_month=_int(m, "ExpirationDateMonth"),
            exp_year=_int(m, "ExpirationDateYear"),
            raw=dict(m),
        )

    @property
    def token_hint(self) -> str | None:
        """The token shortened for display."""
        return mask_token(self.token)


@_masked_repr
@dataclass(frozen=True)
class Subscription:
    """A recurring-payment plan (docs/gateway.md §3.5)."""

    id: str
    account_id: str | None
    amount: Decimal
    currency: str
    status: SubscriptionStatus | str | None
    interval: Interval | str | None
    period: int | None
    description: str | None = None
    email: str | None = field(default=None, metadata=_masked(mask_email))
    currency_code: int | None = None
    require_confirmation: bool = False
    start_date: datetime | None = None
    interval_code: int | None = None
    max_periods: int | None = None
    culture_name: str | None = None
    status_code: int | None = None
    successful_transactions_number: int = 0
    failed_transactions_number: int = 0
    last_transaction_date: datetime | None = None
    next_transaction_date: datetime | None = None
    receipt: Any = field(default=None, repr=False, hash=False)
    failover_scheme_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> Subscription:
        """Build from the subscription ``Model``."""
        m = _as_mapping(model, "subscription")
        amount, currency = _amount_and_currency(m)
        return cls(
            id=str(_require(m, "Id")),
            account_id=_str(m, "AccountId"),
            amount=amount,
            currency=currency,
            status=_enum(SubscriptionStatus, m.get("Status")),
            interval=_enum(Interval, m.get("Interval")),
            period=_int(m, "Period"),
            description=_str(m, "Description"),
            email=_str(m, "Email"),
            currency_code=_int(m, "CurrencyCode"),
            require_confirmation=_bool(m, "RequireConfirmation"),
            start_date=_date(m, "StartDate"),
            interval_code=_int(m, "IntervalCode"),
            max_periods=_int(m, "MaxPeriods"),
            culture_name=_str(m, "CultureName"),
            status_code=_int(m, "StatusCode"),
            successful_transactions_number=_int(m, "SuccessfulTransactionsNumber") or 0,
            failed_transactions_number=_int(m, "FailedTransactionsNumber") or 0,
            last_transaction_date=_date(m, "LastTransactionDate"),
            next_transaction_date=_date(m, "NextTransactionDate"),
            receipt=m.get("Receipt"),
            failover_scheme_id=_str(m, "FailoverSchemeId"),
            raw=dict(m),
        )


@_masked_repr
@dataclass(frozen=True)
class Order:
    """An invoice sent by e-mail/SMS with a payment link (docs/gateway.md §3.5)."""

    id: str
    amount: Decimal
    currency: str
    url: str | None
    status: str | None = None
    number: int | None = None
    description: str | None = None
    email: str | None = field(default=None, metadata=_masked(mask_email))
    phone: str | None = field(default=None, metadata=_masked(mask_phone))
    currency_code: int | None = None
    require_confirmation: bool = False
    culture_name: str | None = None
    created_at: datetime | None = None
    payment_at: datetime | None = None
    status_code: int | None = None
    internal_id: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> Order:
        """Build from the order ``Model``."""
        m = _as_mapping(model, "order")
        amount, currency = _amount_and_currency(m)
        return cls(
            id=str(_require(m, "Id")),
            amount=amount,
            currency=currency,
            url=_str(m, "Url"),
            status=_str(m, "Status"),
            number=_int(m, "Number"),
            description=_str(m, "Description"),
            email=_str(m, "Email"),
            phone=_str(m, "Phone"),
            currency_code=_int(m, "CurrencyCode"),
            require_confirmation=_bool(m, "RequireConfirmation"),
            culture_name=_str(m, "CultureName"),
            created_at=_date(m, "CreatedDate"),
            payment_at=_date(m, "PaymentDate"),
            status_code=_int(m, "StatusCode"),
            internal_id=_int(m, "InternalId"),
            raw=dict(m),
        )


@_masked_repr
@dataclass(frozen=True)
class NotificationSettings:
    """One notification type's settings (docs/gateway.md §3.5, §5.1)."""

    is_enabled: bool
    address: str | None
    http_method: str | None = None
    encoding: str | None = None
    format: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, hash=False)

    @classmethod
    def from_api(cls, model: object) -> NotificationSettings:
        """Build from the settings ``Model``."""
        m = _as_mapping(model, "notification settings")
        return cls(
            is_enabled=_bool(m, "IsEnabled"),
            address=_str(m, "Address"),
            http_method=_str(m, "HttpMethod"),
            encoding=_str(m, "Encoding"),
            format=_str(m, "Format"),
            raw=dict(m),
        )


@_masked_repr
@dataclass(frozen=True)
class PublicKeyInfo:
    """The cryptogram key from ``GET /payments/publickey`` (docs/gateway.md §1.7)."""

    pem: str = field(repr=False)
    version: int

    @classmethod
    def from_api(cls, model: object) -> PublicKeyInfo:
        """Build from ``{Pem, Version}``."""
        m = _as_mapping(model, "public key")
        pem = m.get("Pem")
        if not isinstance(pem, str) or not pem.strip():
            raise ValueError("the gateway's public key has no Pem")
        return cls(pem=pem, version=_int_value("Version", _require(m, "Version")))
