"""The gateway's rules: payments, 3-D Secure, two-stage payments, refunds and tokens.

:class:`Gateway` holds one terminal's state and enforces the gateway's rules
(docs/gateway.md §3, §4); it does no I/O and knows nothing of HTTP. The web layer
(:mod:`checkout_kit.sandbox.web.api`) authenticates, parses and answers; the in-process
:class:`checkout_kit.sandbox.runtime.Sandbox` sends what the rules queue and keeps the
state on disk.

Cryptogram problems decline the payment (a transaction is recorded, a Fail
notification goes out) with these reason codes (the real gateway's choice is
UNCONFIRMED):

=========================================  ======
packet unreadable, unknown key version,     5030
cannot be decrypted, CVV-only packet
packet made for another Public ID           5003
card number fails Luhn                      5014
card expired (by the virtual clock)         5054
=========================================  ======
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ... import cryptogram, threeds
from ...cards import Expiry, detect_brand, luhn_valid
from ...errors import CardError, CryptogramError, UnknownKeyVersionError
from ...notifications import NotificationType, codec_for
from ...reasons import ReasonCode, reason_for
from . import render
from .clock import VirtualClock
from .orders import Orders
from .outbox import Outbox, Reply
from .params import TIME_ZONES, Params, PaymentRequest, RequestError, url_problem
from .policy import literal_target_problem
from .records import (
    CardInfo,
    Delivery,
    SandboxState,
    TokenRecord,
    Transaction,
    TxStatus,
    TxType,
)
from .settings import (
    DEFAULT_KEY_VERSION,
    DEFAULT_PUBLIC_ID,
    DEFAULT_SECRET,
    SandboxSettings,
    SaveCards,
)
from .subscriptions import Subscriptions
from .terminal import Terminal
from .testcards import DEFAULT, CardBehaviour, behaviour_for

__all__ = [
    "CHECK_NOT_UPDATABLE",
    "DEFAULT_PUBLIC_ID",
    "DEFAULT_SECRET",
    "Envelope",
    "Gateway",
    "PendingCheck",
    "SandboxSettings",
    "Step",
]

log = logging.getLogger("checkout_kit.sandbox")

#: The ``{Success, Message, Model}`` answer of an operation.
Envelope = dict[str, Any]

#: ``Message`` of ``/site/notifications/Check/update``: the API may not change Check
#: (docs/gateway.md §3.5; the gateway's exact wording is UNCONFIRMED).
CHECK_NOT_UPDATABLE = "Check notification settings can be changed only in the merchant account"

_PAID = (TxStatus.AUTHORIZED, TxStatus.COMPLETED)
# The reason codes the rules decline with (a wrong name fails at import).
_AUTHENTICATION_FAILED = ReasonCode["AUTHENTICATION_FAILED"]
_EXPIRED_CARD = ReasonCode["EXPIRED_CARD"]
_FORMAT_ERROR = ReasonCode["FORMAT_ERROR"]
_INVALID_CARD_NUMBER = ReasonCode["INVALID_CARD_NUMBER"]
_INVALID_MERCHANT = ReasonCode["INVALID_MERCHANT"]


def _text(value: str | Callable[[], str]) -> str:
    """``value``, or what it returns (the request's host URL is worked out only when
    a 3-D Secure answer needs it)."""
    return value if isinstance(value, str) else value()


def _load_keys(keys: Mapping[int, Any]) -> dict[int, RSAPrivateKey]:
    loaded = {}
    for version, key in keys.items():
        if not isinstance(version, int) or not 0 <= version <= 99:
            raise ValueError(f"key versions are 0-99, not {version!r}")
        loaded[version] = cryptogram.load_private_key(key)
    if not loaded:
        raise ValueError("the sandbox needs at least one key")
    return loaded


@dataclass
class PendingCheck:
    """A new payment waiting for the shop's answer to its Check (docs/gateway.md §5.3).

    The rules do not send it: whoever does the I/O sends :attr:`delivery` and hands
    the :class:`~checkout_kit.sandbox.rules.outbox.Reply` to :meth:`Gateway.resume`.
    """

    tx: Transaction
    delivery: Delivery
    reason: int
    token_reason: int | None
    three_ds: bool
    base_url: str | Callable[[], str]


#: What a payment operation gives back: its answer, or the Check it waits for.
Step = Envelope | PendingCheck


class Gateway:
    """An emulated CloudPayments terminal: its state and the gateway's rules.

    Operations take :class:`~checkout_kit.sandbox.rules.params.Params` and return the
    ``{Success, Message, Model}`` envelope, or raise
    :class:`~checkout_kit.sandbox.rules.params.RequestError`. Nothing here does I/O:
    notifications are queued in the state (:class:`~.outbox.Outbox`), a payment that
    needs a Check answer returns a :class:`PendingCheck`, and every change is noted in
    :attr:`SandboxState.changed` for persistence.

    Locking: one re-entrant lock guards the state; it is never held while a Check is
    out, because the shop may call the API back from its handler.
    """

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        keys: Mapping[int, Any] | None = None,
        clock: VirtualClock | None = None,
        state: SandboxState | None = None,
        randbytes: Callable[[int], bytes] | None = None,
        lock: AbstractContextManager[object] | None = None,
    ) -> None:
        self.settings = settings or SandboxSettings()
        self.clock = clock or VirtualClock()
        #: Guards :attr:`state` (re-entrant); ``lock`` replaces the in-process default.
        self.lock: AbstractContextManager[object] = lock or threading.RLock()
        self.state = state if state is not None else SandboxState()
        self._randbytes = randbytes or os.urandom
        self.keys = _load_keys(self._remembered_keys() if keys is None else keys)
        if self.settings.key_version not in self.keys:
            self.settings.key_version = max(self.keys)
        self.outbox = Outbox(self.state, self.clock.now, self.settings.api_secret,
                             lambda: self.settings.duplicate_notifications)
        self.terminal = Terminal(self.settings, self.state, self.lock, self.clock, self.outbox,
                                 self._randbytes)
        self.subscriptions = Subscriptions(self.terminal)
        self.orders = Orders(self.terminal)

    # ------------------------------------------------------------------ keys

    def _remembered_keys(self) -> dict[int, Any]:
        """The generated key kept in the state, or a fresh one (then kept there)."""
        saved = self.state.meta.get("generated_keys")
        if isinstance(saved, dict) and saved:
            return {int(v): pem.encode("ascii") for v, pem in saved.items()}
        private_pem, _ = cryptogram.generate_key_pair(2048)
        self.state.meta["generated_keys"] = {
            str(DEFAULT_KEY_VERSION): private_pem.decode("ascii")
        }
        self.state.changed.add(("meta", "meta"))
        return {DEFAULT_KEY_VERSION: private_pem}
    def public_key_pem(self, version: int | None = None) -> str:
        """The PEM of the public key for ``version`` (default: the current one)."""
        key = self.keys[self.settings.key_version if version is None else version]
        return key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    @property
    def public_id(self) -> str:
        """The terminal's Public ID."""
        return self.settings.public_id

    @property
    def api_secret(self) -> str:
        """The terminal's API secret."""
        return self.settings.api_secret

    # ------------------------------------------------------------------ test helpers

    def make_cryptogram(
        self,
        card_number: str,
        exp: str | None = None,
        cvv: str = "123",
        *,
        format: str = "01",
        public_id: str | None = None,
        key_version: int | None = None,
    ) -> str:
        """A card packet this sandbox can open (for tests: in production only the
        gateway's own scripts make cryptograms). ``exp`` defaults to December three
        years after the virtual now."""
        version = self.settings.key_version if key_version is None else key_version
        return cryptogram.build(
            card_number, exp or f"12/{(self.now().year + 3) % 100:02d}", cvv,
            self.public_id if public_id is None else public_id,
            format=format, key=self.keys[version].public_key(), key_version=version,
            check_luhn=False,
        )

    def pa_res_for(self, transaction_id: int, outcome: str = "confirm") -> str:
        """The PaRes the sandbox bank page would post for ``outcome`` (``confirm``,
        ``decline`` or ``cancel``), without going through the page."""
        outcomes = {"confirm": threeds.PaResOutcome.AUTHENTICATED,
                    "decline": threeds.PaResOutcome.FAILED,
                    "cancel": threeds.PaResOutcome.CANCELLED}
        return threeds.sign_pares(transaction_id, outcomes[outcome], self.api_secret,
                                  randbytes=self._randbytes)

    # ------------------------------------------------------------------ helpers

    def now(self) -> datetime:
        """Virtual now."""
        return self.clock.now()

    def random_hex(self, length: int) -> str:
        """``length`` random hex digits."""
        return self.terminal.random_hex(length)

    def transaction(self, transaction_id: int) -> Transaction:
        """A transaction of this terminal, or ``RequestError("Transaction not found")``."""
        tx = self.state.transactions.get(transaction_id)
        if tx is None or tx.public_id != self.public_id:
            raise RequestError("Transaction not found")
        return tx

    def model(self, tx: Transaction) -> dict[str, Any]:
        """The API model of ``tx``."""
        return render.transaction_model(tx, self.settings.terminal_url)

    def _envelope(self, tx: Transaction) -> Envelope:
        return {"Success": tx.status in _PAID, "Message": None, "Model": self.model(tx)}

    def _notify_tx(self, kind: NotificationType, tx: Transaction, **extra: object) -> None:
        """Note that ``tx`` changed and queue ``kind`` about it (lock held)."""
        self.state.touch(tx)
        if not self.outbox.wants(kind):
            return
        fields = render.transaction_fields(tx, self.now(), kind)
        fields.update(extra)
        self.outbox.enqueue(kind, fields, transaction_id=tx.id,
                            subscription_id=tx.subscription_id)

    # ------------------------------------------------------------------ cryptograms

    def _header_card(self, packet: str) -> CardInfo | None:
        try:
            header = cryptogram.parse(packet)
        except CryptogramError:
            return None
        if not (header.first_six and header.last_four and header.exp_month and header.exp_year):
            return None
        brand = detect_brand(header.first_six)
        return CardInfo(header.first_six, header.last_four, header.exp_month, header.exp_year,
                        *render.card_type_for(brand))

    def _card_id(self, pan: str) -> str:
        """``CardId``: the same for every payment with this card on this terminal, and
        no way back to the number (a keyed hash, never stored with the number)."""
        digest = hmac.new(self.api_secret.encode(), b"CardId:" + pan.encode(), "sha256")
        return digest.hexdigest()[:32]

    def open_packet(
        self, packet: str
    ) -> tuple[CardInfo | None, CardBehaviour, tuple[int, str] | None]:
        """Decrypt a card packet: ``(card, behaviour, failure)`` where ``failure`` is
        ``(ReasonCode, why)`` when the payment must be declined."""
        try:
            opened = cryptogram.decrypt(packet, self.keys)
        except UnknownKeyVersionError as exc:
            return self._header_card(packet), DEFAULT, (
                _FORMAT_ERROR, f"no sandbox key has version {exc.version}")
        except CryptogramError as exc:
            return self._header_card(packet), DEFAULT, (
                _FORMAT_ERROR, f"card packet refused: {exc.code}")
        pan = opened.card_number
        if pan is None or opened.exp_month is None or opened.exp_year is None:
            return None, DEFAULT, (_FORMAT_ERROR, "a CVV-only packet cannot pay")
        brand = detect_brand(pan)
        card = CardInfo(pan[:6], pan[-4:], opened.exp_month, opened.exp_year,
                        *render.card_type_for(brand), card_id=self._card_id(pan))
        if opened.public_id != self.public_id:
            return card, DEFAULT, (_INVALID_MERCHANT, "the packet was made for another Public ID")
        if not luhn_valid(pan):
            return card, DEFAULT, (_INVALID_CARD_NUMBER, "the card number fails the Luhn check")
        try:
            expired = Expiry(opened.exp_year, opened.exp_month).is_expired(self.now())
        except CardError:
            expired = True
        if expired:
            return card, DEFAULT, (_EXPIRED_CARD, "the card has expired")
        return card, behaviour_for(pan), None

    # ------------------------------------------------------------------ payment pipeline

    def _new_payment(
        self, req: PaymentRequest, card: CardInfo | None, *, two_stage: bool
    ) -> Transaction:
        with self.lock:
            tx_id = self.state.next_id("next_transaction_id")
        return Transaction(
            id=tx_id,
            public_id=self.public_id,
            type=TxType.PAYMENT,
            amount=req.amount,
            currency=req.currency,
            status=TxStatus.AUTHORIZED if two_stage else TxStatus.COMPLETED,
            created=self.now(),
            two_stage=two_stage,
            card=card,
            invoice_id=req.invoice_id,
            account_id=req.account_id,
            email=req.email,
            description=req.description,
            name=req.name,
            ip_address=req.ip_address,
            culture_name=req.culture_name,
            payment_url=req.payment_url,
            json_data=req.json_data,
            save_card=req.save_card,
        )

    def process(
        self,
        tx: Transaction,
        *,
        reason: int,
        token_reason: int | None,
        three_ds: bool,
        failure: tuple[int, str] | None,
        base_url: str | Callable[[], str] = "http://localhost/",
    ) -> Step:
        """Run a new payment through Check, 3-D Secure and authorization. Returns the
        envelope, or the :class:`PendingCheck` to answer first when the shop wants a
        Check (it goes out before authorization and before 3-D Secure)."""
        with self.lock:
            if failure is None:
                check = self.outbox.new_check(
                    {**render.transaction_fields(tx, self.now(), NotificationType.CHECK),
                     "OperationType": "Payment"},
                    transaction_id=tx.id,
                )
                if check is not None:
                    return PendingCheck(tx, check, reason, token_reason, three_ds, base_url)
            return self._authorize(tx, reason, token_reason, three_ds, failure, base_url)

    def resume(self, pending: PendingCheck, reply: Reply) -> Envelope:
        """Go on with a payment once the shop answered its Check with ``reply``."""
        with self.lock:
            answer = self.outbox.check_answer(pending.delivery, reply)
            failure = None if answer is None else (
                answer, f"the shop's Check answer declined the payment ({answer})")
            return self._authorize(pending.tx, pending.reason, pending.token_reason,
                                   pending.three_ds, failure, pending.base_url)

    def _authorize(
        self, tx: Transaction, reason: int, token_reason: int | None, three_ds: bool,
        failure: tuple[int, str] | None, base_url: str | Callable[[], str],
    ) -> Envelope:
        self.state.add(tx)
        if failure is not None:
            self._decline(tx, *failure)
            return self._envelope(tx)
        if three_ds:
            return self._challenge(tx, reason, token_reason, base_url)
        self.settle(tx, reason, token_reason)
        return self._envelope(tx)

    def _challenge(
        self, tx: Transaction, reason: int, token_reason: int | None,
        base_url: str | Callable[[], str],
    ) -> Envelope:
        card = tx.card
        assert card is not None
        tx.status = TxStatus.AWAITING_AUTHENTICATION
        tx.pending_reason, tx.pending_token_reason = reason, token_reason
        tx.three_ds_callback_id = self.random_hex(32)
        base = _text(base_url).rstrip("/")
        # Where ThreeDSCallback may send the payer: fixed now, never taken from its MD.
        tx.success_url = tx.success_url or f"{base}/widget/3ds/success/{tx.id}"
        tx.fail_url = tx.fail_url or f"{base}/widget/3ds/fail/{tx.id}"
        tx.pa_req = threeds.build_pareq(
            first_six=card.first_six, last_four=card.last_four, amount=tx.amount,
            currency=tx.currency, date=tx.created, merchant_name=self.settings.site_name,
            customer_name=tx.name, culture_name=tx.culture_name or "ru-RU",
            transaction_id=tx.id,
        )
        model = {
            "TransactionId": tx.id,
            "PaReq": tx.pa_req,
            "GoReq": None,
            "AcsUrl": self._acs_url(base),
            "ThreeDsSessionData": None,
            "IFrameIsAllowed": True,
            "FrameWidth": None,
            "FrameHeight": None,
            "ThreeDsCallbackId": tx.three_ds_callback_id,
            "EscrowAccumulationId": None,
        }
        return {"Success": False, "Message": None, "Model": model}

    def _acs_url(self, base: str) -> str:
        """The bank page's absolute URL: a real gateway sends one, and the shop posts
        the payer's browser only to an absolute https (or loopback http) URL. A path
        in ``settings.acs_url`` (a sandbox mounted under a prefix of the shop) is put
        on the origin the caller reached us at."""
        configured = self.settings.acs_url
        if not configured:
            return f"{base}/acs"
        if configured.startswith("/") and not configured.startswith("//"):
            return base + configured
        return configured

    def _decline(self, tx: Transaction, code: int, detail: str) -> None:
        tx.status = TxStatus.DECLINED
        tx.reason_code = code
        tx.detail = detail
        row = reason_for(code)
        log.info("transaction %s declined %s (%s)", tx.id, code, detail)
        self._notify_tx(
            NotificationType.FAIL, tx, Reason=row.name, ReasonCode=code,
            CardHolderMessage=row.message(tx.culture_name), Token=tx.token,
        )

    def _new_rrn(self) -> str:
        """A 12-digit retrieval reference number, as card networks give."""
        return str(int.from_bytes(self._randbytes(8), "big") % 10**12).zfill(12)

    def settle(self, tx: Transaction, reason: int, token_reason: int | None) -> None:
        """Authorize ``tx`` with the card's outcome ``reason`` (lock held). The card
        network is asked either way, so approved and issuer-declined payments both
        get an ``Rrn``."""
        tx.rrn = self._new_rrn()
        if reason:
            self._decline(tx, reason, "the test card declines")
            return
        now = self.now()
        tx.reason_code = 0
        tx.auth_date, tx.auth_amount = now, tx.amount
        tx.status = TxStatus.AUTHORIZED if tx.two_stage else TxStatus.COMPLETED
        if not tx.two_stage:
            tx.confirm_date = now
        recurrent = self.subscriptions.instruction(tx.json_data)
        save = self.settings.save_cards
        wants_token = recurrent is not None or save == SaveCards.ALWAYS or (
            tx.save_card and save == SaveCards.ON_REQUEST)
        if tx.token is None and token_reason is not None and wants_token and tx.card:
            tx.token = self._issue_token(tx, token_reason)
        if recurrent is not None:
            self.subscriptions.from_payment(tx, recurrent)
        self.orders.paid(tx)
        self._notify_tx(
            NotificationType.PAY, tx, GatewayName=render.GATEWAY_NAME,
            AuthCode=render.AUTH_CODE, Token=tx.token, TotalFee=render.NO_FEE,
        )

    def _issue_token(self, tx: Transaction, token_reason: int) -> str:
        assert tx.card is not None
        token = "tk_" + self.random_hex(29)
        self.state.add(TokenRecord(
            token=token, public_id=self.public_id, account_id=tx.account_id,
            card=tx.card, created=self.now(), token_reason=token_reason,
        ))
        return token

    # ------------------------------------------------------------------ API operations

    def pay_by_cryptogram(
        self, p: Params, *, two_stage: bool, base_url: str | Callable[[], str] = "http://localhost/",
        order_id: str | None = None, default_ip: str | None = None,
    ) -> Step:
        """``/payments/cards/charge`` and ``/payments/cards/auth``. ``IpAddress`` is
        required unless ``default_ip`` stands in for it (a Public ID caller's address)."""
        req = PaymentRequest.from_params(p, ip_required=default_ip is None)
        if req.ip_address is None:
            req.ip_address = default_ip
        packet = p.required_text("CardCryptogramPacket", max_length=8192)
        # A sandbox extension: where ThreeDSCallback may send the payer (else the
        # widget's result pages, fixed at the challenge); never taken from the MD.
        callback_urls = p.url("SuccessUrl"), p.url("FailUrl")
        card, behaviour, failure = self.open_packet(packet)
        tx = self._new_payment(req, card, two_stage=two_stage)
        tx.order_id = order_id
        tx.success_url, tx.fail_url = callback_urls
        return self.process(
            tx, reason=behaviour.charge_reason, token_reason=behaviour.token_reason,
            three_ds=behaviour.three_ds, failure=failure, base_url=base_url,
        )

    def pay_by_token(self, p: Params, *, two_stage: bool) -> Step:
        """``/payments/tokens/charge`` and ``/payments/tokens/auth``."""
        req = PaymentRequest.from_params(p, ip_required=False)
        token = p.required_text("Token", max_length=255)
        account_id = p.required_text("AccountId", max_length=255)
        initiator = p.integer("TrInitiatorCode", required=True, minimum=0, maximum=1)
        scheduled = p.integer("PaymentScheduled", minimum=0, maximum=1) or 0
        with self.lock:
            record = self.state.tokens.get(token)
            if record is None or record.public_id != self.public_id:
                raise RequestError("Token not found")
            if record.account_id is not None and record.account_id != account_id:
                raise RequestError("The token belongs to another AccountId")
        return self.token_payment(record, req, two_stage=two_stage, initiator=initiator,
                                  scheduled=bool(scheduled))

    def token_payment(
        self,
        record: TokenRecord,
        req: PaymentRequest,
        *,
        two_stage: bool,
        initiator: int | None,
        scheduled: bool = False,
        subscription_id: str | None = None,
    ) -> Step:
        """Charge a saved card (no 3-D Secure; the token's outcome from the test table).
        ``initiator`` and ``scheduled`` are recorded as sent (``TrInitiatorCode``,
        ``PaymentScheduled``)."""
        tx = self._new_payment(req, record.card, two_stage=two_stage)
        tx.token, tx.tr_initiator_code, tx.subscription_id = (
            record.token, initiator, subscription_id)
        tx.payment_scheduled = scheduled
        failure = None
        if Expiry(record.card.exp_year, record.card.exp_month).is_expired(self.now()):
            failure = (_EXPIRED_CARD, "the saved card has expired")
        return self.process(
            tx, reason=record.token_reason, token_reason=None, three_ds=False, failure=failure
        )

    def start_subscription_charge(self, sub_id: str) -> Step | None:
        """The due charge of a subscription (``None`` when its token is gone); hand its
        answer to ``subscriptions.charged``."""
        sub, record, req = self.subscriptions.charge_for(sub_id)
        if record is None:
            return None
        # The shop's schedule charges it: merchant-initiated and scheduled.
        return self.token_payment(record, req, two_stage=sub.require_confirmation,
                                  initiator=0, scheduled=True, subscription_id=sub.id)

    def post3ds(self, p: Params) -> Envelope:
        """``/payments/cards/post3ds``: once per transaction; a replay returns the
        stored result."""
        tx_id = p.required_integer("TransactionId")
        pa_res = p.required_text("PaRes", max_length=8192)
        with self.lock:
            return self.complete_3ds(self.transaction(tx_id), pa_res)

    def complete_3ds(self, tx: Transaction, pa_res: str) -> dict[str, Any]:
        """Finish 3-D Secure for ``tx`` (lock held)."""
        if tx.post3ds_response is not None:
            return tx.post3ds_response
        if tx.status is not TxStatus.AWAITING_AUTHENTICATION:
            raise RequestError("The transaction is not waiting for 3-D Secure")
        try:
            outcome: threeds.PaResOutcome | None = threeds.verify_pares(
                pa_res, tx.id, self.api_secret)
            detail = f"3-D Secure outcome {outcome}"
        except threeds.ThreeDSError as exc:
            outcome, detail = None, f"PaRes refused: {exc.code}"
        if outcome is threeds.PaResOutcome.AUTHENTICATED:
            self.settle(tx, tx.pending_reason or 0, tx.pending_token_reason)
        else:
            self._decline(tx, _AUTHENTICATION_FAILED, detail)
        tx.post3ds_response = self._envelope(tx)
        self.state.touch(tx)
        return tx.post3ds_response

    def three_ds_callback(self, md_text: str, pa_res: str | None) -> str:
        """``/payments/ThreeDSCallback``: finish 3-D Secure, answer with the redirect
        ``Location`` (``SuccessUrl``, or ``FailUrl?ReasonCode=…&CardHolderMessage=…``).

        Only for a payment of this terminal that awaits 3-D Secure, with its
        ``ThreeDsCallbackId`` and the SuccessUrl/FailUrl fixed when it was made; anything
        else is a 400 request error that changes nothing (never a redirect to a URL the
        caller chose)."""
        try:
            md = threeds.decode_callback_md(md_text)
        except threeds.ThreeDSError:
            raise RequestError("MD is invalid", 400) from None
        with self.lock:
            tx = self.state.transactions.get(md.transaction_id)
            if (
                tx is None or tx.public_id != self.public_id
                or tx.status is not TxStatus.AWAITING_AUTHENTICATION
                or tx.post3ds_response is not None or tx.three_ds_callback_id is None
                or not hmac.compare_digest(tx.three_ds_callback_id.encode(),
                                           md.three_ds_callback_id.encode("utf-8", "replace"))
            ):
                raise RequestError(
                    "No payment awaits 3-D Secure with this TransactionId and ThreeDsCallbackId",
                    400)
            if (md.success_url, md.fail_url) != (tx.success_url, tx.fail_url):
                raise RequestError(
                    "SuccessUrl and FailUrl differ from those fixed when the payment was made",
                    400)
            self.complete_3ds(tx, pa_res or "")
            ok = tx.status in _PAID
            return threeds.callback_redirect(
                md, success=ok, reason_code=tx.reason_code,
                cardholder_message=reason_for(tx.reason_code).message(tx.culture_name),
            )

    def _payment_in(self, p: Params, status: TxStatus, action: str) -> Transaction:
        """The payment named by ``TransactionId``, which must be in ``status`` (lock held)."""
        tx = self.transaction(p.required_integer("TransactionId"))
        if tx.type is not TxType.PAYMENT or tx.status is not status:
            raise RequestError(f"Only {status} payments can be {action} (this one is {tx.status})")
        return tx

    def confirm(self, p: Params) -> Envelope:
        """``/payments/confirm``: full or partial, once, Authorized → Completed."""
        with self.lock:
            tx = self._payment_in(p, TxStatus.AUTHORIZED, "confirmed")
            amount = p.required_amount("Amount", tx.currency)
            if amount > tx.amount:
                raise RequestError("Amount exceeds the authorized amount")
            data = p.json_value("JsonData")  # refused before the payment changes
            tx.amount, tx.status, tx.confirm_date = amount, TxStatus.COMPLETED, self.now()
            if data is not None:
                tx.json_data = data
            self._notify_tx(
                NotificationType.CONFIRM, tx, AuthCode=render.AUTH_CODE, Token=tx.token)
        return {"Success": True, "Message": None}

    def cancel_authorization(self, tx: Transaction) -> None:
        """Authorized → Cancelled, with a Cancel notification (lock held)."""
        tx.status = TxStatus.CANCELLED
        self._notify_tx(NotificationType.CANCEL, tx)

    def void(self, p: Params) -> Envelope:
        """``/payments/void``: Authorized only."""
        with self.lock:
            self.cancel_authorization(self._payment_in(p, TxStatus.AUTHORIZED, "voided"))
        return {"Success": True, "Message": None}

    def refund(self, p: Params) -> Envelope:
        """``/payments/refund``: Completed payments, partial or full, several times,
        never above the amount, not after one year; each refund is a transaction."""
        with self.lock:
            tx = self._payment_in(p, TxStatus.COMPLETED, "refunded")
            amount = p.required_amount("Amount", tx.currency)
            now = self.now()
            if now - tx.created > self.settings.refund_window:
                raise RequestError("Payments older than one year cannot be refunded")
            if amount > tx.amount - tx.refunded:
                raise RequestError("Amount exceeds the amount left to refund")
            refund = Transaction(
                id=self.state.next_id("next_transaction_id"), public_id=self.public_id,
                type=TxType.REFUND, amount=amount, currency=tx.currency,
                status=TxStatus.COMPLETED, created=now, card=tx.card,
                invoice_id=tx.invoice_id, account_id=tx.account_id, email=tx.email,
                description=tx.description, name=tx.name, culture_name=tx.culture_name,
                json_data=p.json_value("JsonData"), auth_date=now, confirm_date=now,
                original_transaction_id=tx.id, rrn=self._new_rrn(),
            )
            self.state.add(refund)
            tx.refunded += amount
            self.state.touch(tx)
            self.outbox.enqueue(
                NotificationType.REFUND,
                {"TransactionId": refund.id, "PaymentTransactionId": tx.id, "Amount": amount,
                 "DateTime": now, "OperationType": "Refund", "InvoiceId": tx.invoice_id,
                 "AccountId": tx.account_id, "Email": tx.email, "Rrn": refund.rrn,
                 # Data is the payment's (docs/gateway.md §5.4), not the refund request's.
                 "Data": render.json_text(tx.json_data)},
                transaction_id=refund.id,
            )
        return {"Success": True, "Message": None, "Model": {"TransactionId": refund.id}}

    # ------------------------------------------------------------------ lookups

    def _mine(self) -> list[Transaction]:
        return [t for t in self.state.transactions.values() if t.public_id == self.public_id]

    def get(self, p: Params) -> Envelope:
        """``/payments/get``."""
        tx_id = p.required_integer("TransactionId")
        with self.lock:
            model = self.model(self.transaction(tx_id))
        return {"Success": True, "Message": None, "Model": model}

    def find(self, p: Params, *, v2: bool) -> Envelope:
        """``/payments/find`` and ``/v2/payments/find``: the latest operation for the
        invoice (docs/gateway.md §3.5); v1 looks at payments only, v2 at refunds and
        payouts too. The latest is the one made last (ids grow with time)."""
        invoice_id = p.required_text("InvoiceId", max_length=255)
        with self.lock:
            found = [
                t for t in self._mine() if t.invoice_id == invoice_id
                and (v2 or t.type is TxType.PAYMENT)
            ]
            if not found:
                return {"Success": False, "Message": "Not found"}
            latest = max(found, key=lambda t: t.id)
            return {"Success": True, "Message": None, "Model": self.model(latest)}

    def list_day(self, p: Params) -> Envelope:
        """``/payments/list``: the operations of one day in ``TimeZone`` (UTC default)."""
        day = p.date("Date", required=True)
        zone = (p.text("TimeZone", max_length=16) or "UTC").upper()
        if zone not in TIME_ZONES:
            raise RequestError("TimeZone is not supported")
        offset = TIME_ZONES[zone]
        with self.lock:
            rows = [t for t in self._mine() if (t.created + offset).date() == day]
            return {"Success": True, "Message": None,
                    "Model": [self.model(t) for t in sorted(rows, key=lambda t: t.id)]}

    def list_period(self, p: Params) -> dict[str, Any]:
        """``/v2/payments/list``: 100 per page, oldest first, optional ``Statuses``."""
        start = p.datetime("CreatedDateGte", required=True)
        end = p.datetime("CreatedDateLte", required=True)
        page = p.integer("PageNumber", minimum=1, maximum=1_000_000) or 1
        statuses = {s.lower() for s in p.text_list("Statuses")}
        assert start is not None and end is not None
        with self.lock:
            rows = sorted(
                (t for t in self._mine() if start <= t.created <= end
                 and (not statuses or t.status.value.lower() in statuses)),
                key=lambda t: (t.created, t.id),
            )[(page - 1) * 100: page * 100]
            return {"Success": True, "Message": None, "Model": [self.model(t) for t in rows]}

    def list_tokens(self, p: Params) -> Envelope:
        """``/payments/tokens/list``: 100 per page."""
        page = p.integer("PageNumber", minimum=1, maximum=1_000_000) or 1
        with self.lock:
            rows = [t for t in self.state.tokens.values() if t.public_id == self.public_id]
            rows = sorted(rows, key=lambda t: (t.created, t.token))[(page - 1) * 100: page * 100]
            return {"Success": True, "Message": None,
                    "Model": [render.token_model(t) for t in rows]}

    # ------------------------------------------------------------------ notification settings

    def notification_settings(self, kind: str) -> Envelope:
        """``/site/notifications/{Type}/get``."""
        with self.lock:
            setting = self.outbox.setting(self._kind(kind))
        return {"Success": True, "Message": None, "Model": {
            "IsEnabled": setting.is_enabled, "Address": setting.address,
            "HttpMethod": setting.http_method, "Encoding": setting.encoding,
            "Format": setting.format,
        }}

    @staticmethod
    def _kind(kind: str) -> NotificationType:
        try:
            return NotificationType.parse(kind)
        except ValueError:
            raise RequestError("Unknown notification type", 404) from None

    def update_notification_settings(
        self, kind: str, p: Params, *, merchant_account: bool = False
    ) -> Envelope:
        """``/site/notifications/{Type}/update``. The API cannot change Check
        (docs/gateway.md §3.5): that is refused with :data:`CHECK_NOT_UPDATABLE`, as
        the gateway does; ``merchant_account`` is the account's own settings page,
        which can (:meth:`configure_notification`)."""
        nkind = self._kind(kind)
        if nkind is NotificationType.CHECK and not merchant_account:
            raise RequestError(CHECK_NOT_UPDATABLE)
        enabled = p.flag("IsEnabled")
        address = p.text("Address", max_length=2000)
        method = (p.text("HttpMethod", max_length=8) or "GET").upper()
        encoding = p.text("Encoding", max_length=16) or "UTF8"
        fmt = p.text("Format", max_length=16) or "CloudPayments"
        if method not in ("GET", "POST"):
            raise RequestError("HttpMethod must be GET or POST")
        try:
            codec_for(encoding)
        except ValueError:
            raise RequestError("Encoding must be UTF8 or Windows1251") from None
        if fmt.lower() != "cloudpayments":
            raise RequestError("Only the CloudPayments format is supported by the sandbox")
        problem = None if address is None else (
            url_problem(address, "Address") or literal_target_problem(
                address, allow_private=self.settings.private_notification_targets,
                allow_loopback=self.settings.loopback_notification_targets))
        if problem is not None:
            raise RequestError(problem)
        if enabled and not address:
            raise RequestError("Address is required")
        with self.lock:
            setting = self.outbox.setting(nkind)
            setting.is_enabled, setting.address, setting.http_method = enabled, address, method
            setting.encoding = "Windows1251" if codec_for(encoding) == "cp1251" else "UTF8"
            self.state.touch(setting)
        return {"Success": True, "Message": None}

    def configure_notification(
        self,
        kind: NotificationType | str,
        address: str | None,
        *,
        http_method: str = "POST",
        encoding: str = "UTF8",
        enabled: bool = True,
    ) -> None:
        """Set a notification type as the merchant account would (Check included,
        which the API cannot change)."""
        self.update_notification_settings(str(kind), Params({
            "IsEnabled": enabled, "Address": address, "HttpMethod": http_method,
            "Encoding": encoding,
        }), merchant_account=True)

    # ------------------------------------------------------------------ time

    def _authorization_deadline(self, tx: Transaction) -> datetime | None:
        if tx.status is TxStatus.AWAITING_AUTHENTICATION:
            # An abandoned 3-D Secure: declined once three_ds_timeout has passed.
            return tx.created + self.settings.three_ds_timeout
        if tx.status is not TxStatus.AUTHORIZED or tx.auth_date is None:
            return None
        auto = self.settings.auto_confirm_after
        if auto is not None and auto < self.settings.auth_expiry:
            return tx.auth_date + auto
        return tx.auth_date + self.settings.auth_expiry

    def next_event(self) -> datetime | None:
        """When the earliest scheduled work is due."""
        with self.lock:
            times = [d for d in (self._authorization_deadline(t)
                                 for t in self.state.transactions.values()) if d]
            times += self.subscriptions.due_times()
            delivery = self.outbox.next_due()
        if delivery is not None:
            times.append(delivery)
        return min(times) if times else None

    def expire_due(self, now: datetime) -> None:
        """Decline the payments left waiting for 3-D Secure longer than
        ``three_ds_timeout``; cancel (or, with ``auto_confirm_after``, confirm) the
        authorizations whose time is up at ``now``; forget replayable answers older
        than their TTL."""
        with self.lock:
            for tx in list(self.state.transactions.values()):
                deadline = self._authorization_deadline(tx)
                if deadline is None or deadline > now:
                    continue
                if tx.status is TxStatus.AWAITING_AUTHENTICATION:
                    self._decline(tx, _AUTHENTICATION_FAILED,
                                  "3-D Secure was not completed in time (abandoned)")
                elif self.settings.auto_confirm_after is not None and (
                    self.settings.auto_confirm_after < self.settings.auth_expiry
                ):
                    tx.status, tx.confirm_date = TxStatus.COMPLETED, now
                    self._notify_tx(NotificationType.CONFIRM, tx, AuthCode=render.AUTH_CODE)
                else:
                    self.cancel_authorization(tx)
            ttl = self.settings.idempotency_ttl
            for key in [k for k, v in self.state.idempotency.items() if now - v.created > ttl]:
                self.state.forget_response(key)
