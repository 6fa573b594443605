"""One instance of a shop using the extension, as its own process (for the
several-instances browser test).

    python tests/e2e/shop_instance.py DATABASE_URL SANDBOX_URL PUBLIC_ID API_SECRET SECRET_KEY

Serves on a free 127.0.0.1 port and prints ``listening http://127.0.0.1:PORT``.
Instances started with the same database, sandbox and ``SECRET_KEY`` are
interchangeable, as behind a load balancer: a session, a CSRF token or a signed
TermUrl from one is good on the other. ``GET /buy/<invoice>`` creates the payment
(amount 321.00 RUB) and sends the buyer to its payment page.
"""

from __future__ import annotations

import sys

from flask import Flask, redirect
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from checkout_kit.shop import CheckoutKit

AMOUNT = "321.00"


def create_app(database_url: str, sandbox_url: str, public_id: str, api_secret: str,
               secret_key: str) -> Flask:
    app = Flask("shop_instance")
    app.config.update(
        SECRET_KEY=secret_key,
        CHECKOUT_KIT_PUBLIC_ID=public_id,
        CHECKOUT_KIT_API_SECRET=api_secret,
        CHECKOUT_KIT_SANDBOX=True,
        CHECKOUT_KIT_SANDBOX_URL=sandbox_url,
        CHECKOUT_KIT_DATABASE_URL=database_url,
    )
    kit = CheckoutKit(app)

    @app.get("/buy/<invoice>")
    def buy(invoice: str) -> Response:
        payment = kit.create_payment(invoice_id=invoice, amount=AMOUNT,
                                     description="Several instances")
        return redirect(payment.checkout_url + "/form", code=303)

    return app


def main(argv: list[str]) -> None:
    app = create_app(*argv)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"listening http://127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
