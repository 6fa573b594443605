"""The gateway's reason codes as one table (docs/gateway.md §3.6 and §5.3).

``REASONS`` maps a ``ReasonCode`` to its official name, a message for the payer
(Russian and English) and its retry class for recurring payments. The sandbox
declines with these, the client turns them into :class:`ReasonCode` members, and
pages show ``cardholder_message`` without a chain of ``if`` statements.

The SBP, payout and cross-terminal codes 6001–6025 are left out on purpose: the
docs/gateway.md §3.6 lists their names without saying which code is which, and card payments
never produce them. :func:`reason_for` gives any unlisted code a generic row.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["REASONS", "Reason", "ReasonCode", "RetryClass", "reason_for"]


class RetryClass(enum.StrEnum):
    """How a recurring charge may be retried after this decline (Docs)."""

    NONE = "none"  # not a card decline, or success
    NEVER = "never"  # "unconditionally negative": redo the initial operation
    CONDITIONAL = "conditional"  # fix the card data first
    TEMPORARY = "temporary"  # may succeed later


@dataclass(frozen=True, slots=True)
class Reason:
    """One row of the reason table."""

    code: int
    name: str
    message_ru: str
    message_en: str
    retry: RetryClass = RetryClass.NONE

    def message(self, culture: str | None = "ru-RU") -> str:
        """The payer-facing text in ``culture`` (Russian unless it starts with ``en``)."""
        return self.message_en if (culture or "").lower().startswith("en") else self.message_ru


_N, _C, _T = RetryClass.NEVER, RetryClass.CONDITIONAL, RetryClass.TEMPORARY
_ISSUER_RU = "Свяжитесь с вашим банком или воспользуйтесь другой картой"
_ISSUER_EN = "Contact your bank or use another card"
_LOST_RU = "Карта утеряна, воспользуйтесь другой картой"
_LOST_EN = "The card is reported lost; use another card"
_UNAVAIL_RU = "Банк недоступен, попробуйте позже"
_UNAVAIL_EN = "The bank is unavailable; try again later"

_ROWS: tuple[Reason, ...] = (
    Reason(0, "Approved", "Оплата успешно проведена", "Payment approved"),
    Reason(5001, "ReferToCardIssuer", _ISSUER_RU, _ISSUER_EN, _N),
    Reason(5003, "InvalidMerchant", _ISSUER_RU, _ISSUER_EN, _N),
    Reason(5004, "PickUpCard", _LOST_RU, _LOST_EN),
    Reason(5005, "DoNotHonor", _ISSUER_RU, _ISSUER_EN, _N),
    Reason(5006, "Error", "Отказ сети проводить операцию или неправильный CVV код",
           "The network declined the operation or the CVV is wrong"),
    Reason(5007, "PickUpCardSpecialConditions", _LOST_RU, _LOST_EN),
    Reason(5012, "InvalidTransaction", "Карта не предназначена для онлайн-платежей",
           "The card cannot be used for online payments", _N),
    Reason(5013, "AmountError", "Слишком маленькая или слишком большая сумма операции",
           "The amount is too small or too large", _C),
    Reason(5014, "InvalidCardNumber", "Некорректный номер карты", "Invalid card number", _C),
    Reason(5015, "NoSuchIssuer", "Неизвестный эмитент карты", "Unknown card issuer"),
    Reason(5017, "CustomerCancellation", "Отказ эмитента, отменено держателем карты",
           "Cancelled by the cardholder", _N),
    Reason(5019, "TransactionError", _ISSUER_RU, _ISSUER_EN),
    Reason(5030, "FormatError", "Ошибка на стороне эквайера, неверно сформирована транзакция",
           "Acquirer formatting error", _C),
    Reason(5031, "BankNotSupportedBySwitch", "Неизвестный эмитент карты", "Unknown card issuer"),
    Reason(5033, "ExpiredCardPickup", "Истёк срок утери карты", "The card has expired", _N),
    Reason(5034, "SuspectedFraud", _ISSUER_RU, _ISSUER_EN, _N),
    Reason(5036, "RestrictedCard", "Карта не предназначена для платежей",
           "The card cannot be used for payments"),
    Reason(5041, "LostCard", _LOST_RU, _LOST_EN),
    Reason(5043, "StolenCard", "Карта украдена, воспользуйтесь другой картой",
           "The card is reported stolen; use another card"),
    Reason(5051, "InsufficientFunds", "Недостаточно средств на карте",
           "Insufficient funds on the card", _T),
    Reason(5054, "ExpiredCard", "Карта просрочена или неверно указан срок действия",
           "The card has expired or the expiry date is wrong", _C),
    Reason(5055, "InvalidPin", "Неверный PIN-код", "Wrong PIN", _C),
    Reason(5057, "TransactionNotPermitted", "Ограничение на карте", "The card is restricted", _N),
    Reason(5058, "TransactionNotPermittedToCard", "Операция не разрешена для этой карты",
           "The operation is not permitted for this card"),
    Reason(5059, "SuspectedFraudDecline", _ISSUER_RU, _ISSUER_EN),
    Reason(5061, "ExceedsApprovalAmount", "Превышен лимит операций по карте",
           "The card's amount limit is exceeded"),
    Reason(5062, "RestrictedCard2", "Карта не предназначена для платежей",
           "The card cannot be used for payments"),
    Reason(5063, "SecurityViolation", "Карта заблокирована из-за нарушений безопасности",
           "The card is blocked for a security violation", _C),
    Reason(5065, "ExceedWithdrawalFrequency", "Превышен лимит операций по карте",
           "The card's operation limit is exceeded", _T),
    Reason(5082, "IncorrectCVV", "Неверный CVV код", "Wrong CVV"),
    Reason(5091, "Timeout", _UNAVAIL_RU, _UNAVAIL_EN),
    Reason(5092, "CannotReachNetwork", _UNAVAIL_RU, _UNAVAIL_EN),
    Reason(5096, "SystemError", "Ошибка банка-эквайера или сети", "Acquirer or network error", _T),
    Reason(5113, "GatewayNotSupported", "Шлюз не поддерживает карты этого банка",
           "The gateway does not support cards of this issuer"),
    Reason(5204, "UnableToProcess", "Операция не может быть обработана по прочим причинам",
           "The operation cannot be processed"),
    Reason(5206, "AuthenticationFailed", "3-D Secure авторизация не пройдена",
           "3-D Secure authentication failed"),
    Reason(5207, "AuthenticationUnavailable", "3-D Secure авторизация недоступна",
           "3-D Secure authentication is unavailable"),
    Reason(5300, "AntiFraud", "Лимиты эквайера на проведение операций",
           "Acquirer limits were exceeded"),
    Reason(5303, "AcquirerTerminalLimitsExceeded", "Превышен лимит терминала",
           "The terminal limit is exceeded"),
    Reason(5761, "NoPhone", "Не указан телефон плательщика", "The payer's phone is missing"),
    Reason(5762, "InvalidPhone", "Некорректный телефон плательщика",
           "The payer's phone is invalid"),
    Reason(5763, "DifferentPhones", "Телефон плательщика не совпадает",
           "The payer's phone does not match"),
    Reason(3001, "InvalidInvoiceId", "Неверный номер заказа", "Invalid order number"),
    Reason(3002, "InvalidAccountId", "Неверный идентификатор плательщика", "Invalid account id"),
    Reason(3003, "InvalidAmount", "Неверная сумма платежа", "Invalid amount"),
    Reason(3004, "OutOfDate", "Срок оплаты истёк", "The payment has expired"),
    Reason(3005, "FormatError", "Магазин не может принять платёж",
           "The shop cannot accept the payment"),
    Reason(3006, "Unavailable", "Магазин недоступен", "The shop is unavailable"),
    Reason(3007, "UnableToConnect", "Не удалось связаться с магазином",
           "The shop could not be reached"),
    Reason(3008, "NotAccepted", "Платёж не может быть принят", "The payment cannot be accepted"),
)

#: ``ReasonCode`` -> :class:`Reason`.
REASONS: dict[int, Reason] = {r.code: r for r in _ROWS}




def _member_name(reason: Reason) -> str:
    """``InsufficientFunds`` -> ``INSUFFICIENT_FUNDS``; the answers to a Check (3xxx)
    take a ``CHECK_`` prefix, since 3005 and 5030 share the name ``FormatError``."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", reason.name).upper()
    return f"CHECK_{name}" if 3000 <= reason.code < 4000 else name


#: Every known ``ReasonCode``, one member per row of :data:`REASONS`
#: (``ReasonCode.INSUFFICIENT_FUNDS == 5051``; ``REASONS[code]`` gives its row).
ReasonCode = enum.IntEnum(  # type: ignore[misc]
    "ReasonCode", [(_member_name(r), r.code) for r in _ROWS], module=__name__)


def reason_for(code: int) -> Reason:
    """The table row for ``code``; an unknown code gets a generic row, never a KeyError."""
    try:
        return REASONS[code]
    except KeyError:
        return Reason(code, f"Reason{code}", "Операция отклонена", "The operation was declined")
