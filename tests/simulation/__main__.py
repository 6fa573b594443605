"""``python -m tests.simulation --seeds N [--start S] [--db URL] [--steps K]``

Runs N schedules (seeds S … S+N-1), each on a fresh database (SQLite by default; a
schema of its own on the PostgreSQL server at ``--db``), and prints a summary: the
schedules run, the root-cause findings by invariant and defect (the first violation of
each payment: later ones are its consequences), and the first seed of each.
``--history`` prints the whole history of each run (use it with ``--seeds 1`` to
replay one seed).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .runner import KNOWN_DEFECTS, STEPS, RunResult, databases, replay_command, run_seed


def root_causes(result: RunResult) -> list[tuple[str, str, str]]:
    """(invariant, defect, detail) of the first violation of each payment (and of
    every violation that names no payment)."""
    seen: set[str] = set()
    found = []
    for v in result.violations:
        if v.invoice is not None:
            if v.invoice in seen:
                continue
            seen.add(v.invoice)
        found.append((v.invariant, v.defect, v.detail))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.simulation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="how many schedules")
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--db", default=None, help="a PostgreSQL server URL (default: SQLite)")
    parser.add_argument("--steps", type=int, default=STEPS, help="actions per schedule")
    parser.add_argument("--history", action="store_true", help="print each run's history")
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)  # the ledger's warnings are part of the history

    counts: Counter[tuple[str, str]] = Counter()
    first: dict[tuple[str, str], tuple[int, str]] = {}
    failing_runs = 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ck-sim-") as tmp, databases(
            args.db, Path(tmp)) as fresh:
        for seed in range(args.start, args.start + args.seeds):
            with fresh() as url:
                result = run_seed(seed, url, steps=args.steps, stop_on=None)
            if args.history:
                print("\n".join(result.history))
            causes = root_causes(result)
            if result.failures():
                failing_runs += 1
            for invariant, defect, detail in causes:
                key = (invariant, defect)
                counts[key] += 1
                first.setdefault(key, (seed, detail))
    elapsed = time.monotonic() - started
    print(f"schedules run: {args.seeds} (seeds {args.start}..{args.start + args.seeds - 1}), "
          f"{args.steps} steps each, {elapsed:.0f} s, {args.seeds / elapsed:.2f} schedules/s")
    print(f"runs failing beyond KNOWN_DEFECTS {sorted(KNOWN_DEFECTS)}: {failing_runs}")
    print("root-cause findings by invariant / defect (count, first seed):")
    for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        seed, detail = first[key]
        print(f"  {key[0]:<38} {key[1]:<4} {count:>6}  seed {seed}: {detail[:110]}")
        print(f"      replay: {replay_command(seed, args.db)}")
    return 1 if failing_runs else 0


if __name__ == "__main__":
    sys.exit(main())
