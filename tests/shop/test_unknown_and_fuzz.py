"""An unknown outcome shows "pending" until the gateway is asked again; random form
posts never reach a 500 nor change the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkout_kit.errors import UnknownOutcomeError
from checkout_kit.ledger import PaymentStatus

from .conftest import DECLINED, NO_3DS, Shop, make_shop


def test_a_lost_answer_is_pending_until_reconciled(
        tmp_path: Path, cloudpayments_sandbox_keys: dict[int, bytes]) -> None:
    shop = make_shop(tmp_path, cloudpayments_sandbox_keys, CHECKOUT_KIT_HTTP_RETRIES=0)
    payment = shop.create()
    shop.sandbox.faults.add("drop", path="/payments/cards/charge")
    shop.sandbox.faults.add("status", path="/payments/find", status=503, times=None)
    _, token = shop.form_page(payment.id)
    data = {"csrf_token": token, "cryptogram": shop.sandbox.make_cryptogram(NO_3DS)}
    response = shop.client.post(f"/checkout/pay/{payment.id}/form", data=data)
    assert response.status_code == 303
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.UNKNOWN
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert page.status_code == 200 and 'data-result="pending"' in page.text
    # The payer cannot pay it again while its outcome is unknown.
    assert shop.client.get(f"/checkout/pay/{payment.id}").status_code == 303
    again = shop.client.post(f"/checkout/pay/{payment.id}/form", data=data)
    assert again.status_code == 303 and len(shop.sandbox.state.transactions) == 1
    shop.sandbox.faults.clear()
    result = shop.app.test_cli_runner().invoke(args=["checkout", "reconcile"])
    assert result.exit_code == 0 and "status=succeeded" in result.output
    assert 'data-result="success"' in shop.client.get(f"/checkout/payments/{payment.id}").text


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
_fields = st.dictionaries(
    st.sampled_from(["csrf_token", "cryptogram", "name", "email", "amount", "MD", "PaRes",
                     "cardNumber", "x"]), _text, max_size=5)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=_fields, keep_token=st.booleans())
def test_random_form_posts_never_fail_the_server(shop: Shop, fields: dict[str, str],
                                                 keep_token: bool) -> None:
    payment = shop.create("fuzz")
    _, token = shop.form_page(payment.id)
    if keep_token:
        fields = {**fields, "csrf_token": token}
    before = (shop.state.ledger.get(payment.id), len(shop.sandbox.state.transactions))
    response: Any = shop.client.post(f"/checkout/pay/{payment.id}/form", data=fields)
    assert 400 <= response.status_code < 500
    assert (shop.state.ledger.get(payment.id), len(shop.sandbox.state.transactions)) == before
    term = shop.client.post("/checkout/3ds/" + (fields.get("x") or "t"), data=fields)
    assert term.status_code in (400, 404)


def test_a_retry_charged_after_a_decline_is_never_shown_failed(shop: Shop) -> None:
    # The gateway takes the retry's money, the answer is lost: the result page's first
    # look at the gateway must find that charge, not the earlier decline.
    payment = shop.create()
    assert shop.pay(payment.id, DECLINED).status_code == 200  # the form, with the reason
    declined = shop.state.ledger.get(payment.id)
    assert declined.status is PaymentStatus.FAILED
    old = declined.gateway_transaction_id
    client = shop.state.client
    real_charge = client.charge

    def charged_then_lost(*args: Any, **kwargs: Any) -> Any:
        real_charge(*args, **kwargs)
        raise UnknownOutcomeError("the answer was lost")

    client.charge = charged_then_lost  # type: ignore[method-assign]
    try:
        assert shop.pay(payment.id, NO_3DS).status_code == 303
    finally:
        del client.charge
    assert shop.state.ledger.get(payment.id).status is PaymentStatus.UNKNOWN
    page = shop.client.get(f"/checkout/payments/{payment.id}")
    assert 'data-result="success"' in page.text
    settled = shop.state.ledger.get(payment.id)
    completed = [t for t in shop.sandbox.state.transactions.values()
                 if str(t.status) == "Completed"]
    assert [t.id for t in completed] == [settled.gateway_transaction_id]
    assert settled.gateway_transaction_id != old
