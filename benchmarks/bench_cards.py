"""Speed of the card toolkit and the cryptogram library, as ratios to bare crypto.

Run from the repository root: ``python benchmarks/bench_cards.py [--rounds N]``.

It prints three figures, each with its target and PASS/FAIL:

(a) ``cryptogram.build`` ops/s divided by the ops/s of a bare ``cryptography`` RSA
    PKCS#1 v1.5 encrypt of the same plaintext under the same key (target >= 0.75);
(b) ``cryptogram.decrypt`` ops/s divided by a bare private-key decrypt of the same
    ciphertext (target >= 0.90);
(c) full card validations per second through ``cards.validate_card`` (number,
    expiry, CVV) on one core (target >= 300,000/s).

The ratios are measured in alternating rounds (bare, ours, ours, bare, ...) and the
median per-round ratio is reported, so drift in machine load hits both sides alike.
Each figure goes through the library's one public path (no options that skip checks).
This script reports; it is not a test, and it always exits 0.
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.backends.openssl import backend
from cryptography.hazmat.primitives.asymmetric import padding

from checkout_kit import cards, cryptogram

PID = "test_api_00000000000000000000002"
CARD, EXP, CVV = "4242424242424242", "12/30", "123"

#: A realistic mix for (c): several brands and CVV sizes, all valid.
VALIDATION_CARDS = [
    ("4242424242424242", "12/30", "123"),
    ("5555555555554444", "01/29", "456"),
    ("2200000000000004", "07/31", "789"),
    ("378282246310005", "11/28", "1234"),
    ("4000056655665556", "03/33", "321"),
    ("2223003122003222", "09/30", "654"),
]

TARGET_BUILD, TARGET_DECRYPT, TARGET_VALIDATIONS = 0.75, 0.90, 300_000


def ops_per_second(fn: Callable[[], object], n: int) -> float:
    """Run ``fn`` ``n`` times with the collector off; return calls per second."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(n):
            fn()
        elapsed = time.perf_counter() - start
    finally:
        if gc_was_on:
            gc.enable()
    return n / elapsed


def paired(
    bare: Callable[[], object], ours: Callable[[], object], n: int, rounds: int
) -> tuple[float, float, float]:
    """Median ratio ours/bare over alternating rounds, and the median ops/s of each."""
    ratios, bare_rates, our_rates = [], [], []
    for i in range(rounds):
        if i % 2:
            our_rate, bare_rate = ops_per_second(ours, n), ops_per_second(bare, n)
        else:
            bare_rate, our_rate = ops_per_second(bare, n), ops_per_second(ours, n)
        ratios.append(our_rate / bare_rate)
        bare_rates.append(bare_rate)
        our_rates.append(our_rate)
    return statistics.median(ratios), statistics.median(our_rates), statistics.median(bare_rates)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def bench_build(rounds: int) -> None:
    public = cryptogram.load_public_key(cryptogram.PUBLISHED_KEYS[cryptogram.DEFAULT_KEY_VERSION])
    plaintext = f"{CARD}@3012@{CVV}@{PID}".encode()
    pkcs1 = padding.PKCS1v15()

    def bare() -> object:
        return public.encrypt(plaintext, pkcs1)

    def ours() -> object:
        return cryptogram.build(CARD, EXP, CVV, PID)

    assert ours().startswith("014242424242301204")  # type: ignore[attr-defined]
    ratio, our_rate, bare_rate = paired(bare, ours, 2000, rounds)
    print(
        f"(a) cryptogram build / bare RSA PKCS#1 v1.5 encrypt: {ratio:.3f}"
        f"  (build {our_rate:,.0f} ops/s, bare {bare_rate:,.0f} ops/s)"
        f"  target >= {TARGET_BUILD}  {verdict(ratio >= TARGET_BUILD)}"
    )


def bench_decrypt(rounds: int) -> None:
    private_pem, public_pem = cryptogram.generate_key_pair(2048)
    private = cryptogram.load_private_key(private_pem)
    packet = cryptogram.build(CARD, EXP, CVV, PID, key=public_pem, key_version=4)
    ciphertext = cryptogram.parse(packet).ciphertext
    pkcs1 = padding.PKCS1v15()

    def bare() -> object:
        return private.decrypt(ciphertext, pkcs1)

    def ours() -> object:
        return cryptogram.decrypt(packet, private)

    assert cryptogram.decrypt(packet, private).card_number == CARD
    ratio, our_rate, bare_rate = paired(bare, ours, 200, rounds)
    print(
        f"(b) cryptogram decrypt / bare private-key decrypt:   {ratio:.3f}"
        f"  (decrypt {our_rate:,.0f} ops/s, bare {bare_rate:,.0f} ops/s)"
        f"  target >= {TARGET_DECRYPT}  {verdict(ratio >= TARGET_DECRYPT)}"
    )


def bench_validate(rounds: int) -> None:
    validate = cards.validate_card
    batch = VALIDATION_CARDS * 50

    def run_batch() -> object:
        for number, exp, cvv in batch:
            validate(number, exp_date=exp, cvv=cvv)
        return None

    for number, exp, cvv in VALIDATION_CARDS:
        result = validate(number, exp_date=exp, cvv=cvv)
        assert result.is_valid, (number[-4:], result.errors)
    rates = [ops_per_second(run_batch, 40) * len(batch) for _ in range(rounds)]
    rate = statistics.median(rates)
    print(
        f"(c) full card validations (number, expiry, CVV):     {rate:,.0f}/s"
        f"  (best round {max(rates):,.0f}/s)"
        f"  target >= {TARGET_VALIDATIONS:,}/s  {verdict(rate >= TARGET_VALIDATIONS)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15, help="measurement rounds (default 15)")
    args = parser.parse_args(argv)
    print(
        f"checkout_kit card benchmark: Python {platform.python_version()}, "
        f"{backend.openssl_version_text()}, {args.rounds} rounds, one process, one core"
    )
    bench_build(args.rounds)
    bench_decrypt(args.rounds)
    bench_validate(args.rounds)
    return 0


if __name__ == "__main__":
    main()
    sys.exit(0)
