"""Reading the gateway's answers (docs/gateway.md §3.4): the envelope, declines, 3-D
Secure and the typed models of :mod:`checkout_kit.models`.

Each public function here is a :data:`~._call.Reader`, or makes one, for an operation's
:class:`~._call.Call`; :class:`~._attempts.Attempts` calls it once the answer is a JSON
object. A reader raises the call's :class:`~checkout_kit.errors.GatewayError`, or any
other exception for an answer it cannot understand (which ``Attempts`` turns into an
unknown outcome or a server fault).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn, TypeVar

from ..errors import PaymentDeclined, RequestRejectedError
from ..models import (
    PublicKeyInfo,
    ThreeDSChallenge,
    Transaction,
    as_reason_code,
    is_three_ds_model,
)
from ..reasons import reason_for
from ._call import Context, Reader

__all__ = ["model", "models", "no_result", "ok_message", "payment", "public_key", "transaction"]

_T = TypeVar("_T")


class _Envelope(NamedTuple):
    success: bool
    message: str | None
    model: Any
    status_code: int


def _envelope(data: Mapping[str, Any], status: int) -> _Envelope:
    success = data.get("Success")
    if not isinstance(success, bool):
        raise ValueError("no Success flag in the answer")
    message = data.get("Message")
    return _Envelope(
        success=success,
        message=message if isinstance(message, str) and message else None,
        model=data.get("Model"),
        status_code=status,
    )


def _rejected(env: _Envelope, ctx: Context) -> NoReturn:
    raise RequestRejectedError(
        env.message or "the gateway refused the request without a message",
        model=env.model, **ctx.kw(env.status_code),
    )


def ok_message(data: Mapping[str, Any], status: int, ctx: Context) -> str:
    """The ``Message`` of an accepted call (``/test`` answers a request guid)."""
    env = _envelope(data, status)
    if not env.success:
        _rejected(env, ctx)
    return env.message or ""


def no_result(data: Mapping[str, Any], status: int, ctx: Context) -> None:
    """Accepted, with nothing to return (``confirm``, ``void``, cancels, updates)."""
    env = _envelope(data, status)
    if not env.success:
        _rejected(env, ctx)


def model(build: Callable[[Any], _T]) -> Reader[_T]:
    """A reader of the answer's ``Model`` as ``build(Model)``."""

    def read(data: Mapping[str, Any], status: int, ctx: Context) -> _T:
        env = _envelope(data, status)
        if not env.success:
            # Reads return declined transactions as data: a transaction model is the answer.
            if not ctx.mutating and isinstance(env.model, Mapping) and env.model:
                return build(env.model)
            _rejected(env, ctx)
        return build(env.model)

    return read


def models(build: Callable[[Any], _T]) -> Reader[list[_T]]:
    """A reader of the answer's ``Model`` as a list: its items, one object, or none."""

    def read(data: Mapping[str, Any], status: int, ctx: Context) -> list[_T]:
        env = _envelope(data, status)
        if not env.success and not env.model:
            _rejected(env, ctx)
        if env.model is None:
            return []
        if isinstance(env.model, Mapping):
            return [build(env.model)]
        if not isinstance(env.model, list):
            raise ValueError("Model is neither a list nor an object")
        return [build(item) for item in env.model]

    return read


def public_key(data: Mapping[str, Any], status: int, ctx: Context) -> PublicKeyInfo:
    """The cryptogram key (``/payments/publickey``)."""
    # The endpoint answers bare {Pem, Version} (docs/gateway.md §1.7); an envelope is
    # read too.
    model = data.get("Model")
    return PublicKeyInfo.from_api(model if isinstance(model, Mapping) else data)


def _declined(
    code: int, tx: Transaction | None, model: Mapping[str, Any], ctx: Context, status: int
) -> NoReturn:
    row = reason_for(code)
    reason_code = (tx.reason_code if tx is not None and tx.reason_code is not None
                   else as_reason_code(code))
    reason = (tx.reason if tx is not None else None) or model.get("Reason") or row.name
    message = (tx.cardholder_message if tx is not None else model.get("CardHolderMessage"))
    raise PaymentDeclined(
        f"{ctx.endpoint}: payment declined, {reason} ({code})",
        reason_code=reason_code,
        reason=str(reason),
        cardholder_message=str(message) if message else row.message_ru,
        transaction=tx,
        **ctx.kw(status),
    )


def _payment_result(
    env: _Envelope, ctx: Context, allow_3ds: bool
) -> Transaction | ThreeDSChallenge:
    """docs/gateway.md §3.4: 3-D Secure, decline, request error or accepted, in that order."""
    model = env.model
    if not env.success and is_three_ds_model(model):
        if not allow_3ds:
            raise ValueError("unexpected 3-D Secure challenge")
        return ThreeDSChallenge.from_api(model)
    if isinstance(model, Mapping) and model.get("TransactionId") is not None:
        try:
            tx = Transaction.from_api(model)
        except ValueError:
            # A decline is definite even when the model is too thin to type in full.
            code = model.get("ReasonCode")
            if env.success or not isinstance(code, int) or isinstance(code, bool) or not code:
                raise
            _declined(code, None, model, ctx, env.status_code)
        code = int(tx.reason_code or 0)  # None: still in progress, no outcome
        if tx.is_declined or (not env.success and code != 0):
            _declined(code, tx, model, ctx, env.status_code)
        if env.success:
            return tx
        raise ValueError(f"Success is false for a transaction in status {tx.status}")
    if not env.success and env.message:
        _rejected(env, ctx)
    raise ValueError("no transaction in the answer")


def payment(allow_3ds: bool) -> Reader[Transaction | ThreeDSChallenge]:
    """A reader of a payment's answer: the transaction, or with ``allow_3ds`` a
    :class:`ThreeDSChallenge`; a decline raises ``PaymentDeclined``."""

    def read(data: Mapping[str, Any], status: int, ctx: Context) -> Transaction | ThreeDSChallenge:
        return _payment_result(_envelope(data, status), ctx, allow_3ds)

    return read


def transaction(data: Mapping[str, Any], status: int, ctx: Context) -> Transaction:
    """A payment's answer where 3-D Secure has no place (``post3ds``, token payments)."""
    result = _payment_result(_envelope(data, status), ctx, allow_3ds=False)
    assert isinstance(result, Transaction)  # allow_3ds=False never yields a challenge
    return result
