"""Mutation testing of the money code: how many mutants of the ledger and the
notification path the ledger, shop and simulation tests kill.

Run from the repository root, after ``python -m pip install -e ".[test,mutation]"``::

    python benchmarks/mutation.py            # goes on where the last run stopped
    python benchmarks/mutation.py --fresh    # forgets earlier results first

What is mutated and which tests run are in ``[tool.mutmut]`` of pyproject.toml. mutmut
works in ``mutants/`` (git-ignored), one mutant per forked test run. The simulation's
budget shrinks to ``CHECKOUT_KIT_SIM_SECONDS`` (default here 2 s) so that each mutant
runs in seconds; its fixed seeds still replay the same schedules.

It prints killed ÷ total for the whole pass and per file, and the surviving mutants by
name (``mutmut show NAME`` prints one). It reports; it is not a test, it is not part of
``.ci/run``, and it always exits 0 once mutmut has run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: mutmut's statuses that count as the tests catching the mutant.
KILLED = {"killed", "timeout", "segfault"}


def _mutmut(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=ROOT, env=env,
                          text=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fresh", action="store_true", help="remove mutants/ first")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    if shutil.which("mutmut") is None and _has_no_module("mutmut"):
        print('mutmut is not installed: python -m pip install -e ".[test,mutation]"')
        return
    if args.fresh:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    env = {**os.environ, "CHECKOUT_KIT_SIM_SECONDS": os.environ.get(
        "CHECKOUT_KIT_SIM_SECONDS", "2")}
    run = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children",
                          str(args.max_children)], cwd=ROOT, env=env)
    if run.returncode not in (0, 1):
        print(f"mutmut run exited {run.returncode}")
        return
    results = _mutmut("results", "--all", "true", env=env)
    statuses: dict[str, str] = {}
    for line in results.stdout.splitlines():
        found = re.match(r"\s*(\S+__mutmut_\d+): (.+?)\s*$", line)
        if found:
            statuses[found.group(1)] = found.group(2)
    if not statuses:
        print(results.stdout or results.stderr)
        return
    by_file: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for name, status in statuses.items():
        # mutmut names a mutant module.xǁClassǁmethod__mutmut_N (or module.x_function__…).
        module = re.split(r"\.x[ǁ_]", name, maxsplit=1)[0]
        by_file[module]["killed" if status in KILLED else status] += 1
    total = collections.Counter(status if status not in KILLED else "killed"
                                for status in statuses.values())
    print(json.dumps({"total": sum(total.values()), **total}, sort_keys=True))
    # A mutant mutmut has not run yet (an interrupted pass) is left out of the ratio.
    checked = sum(n for status, n in total.items() if status != "not checked")
    print(f"killed / total = {total['killed']}/{checked} = "
          f"{total['killed'] / max(checked, 1):.3f}  (target >= 0.90)"
          + (f"; {total['not checked']} not run yet" if total["not checked"] else ""))
    for module, counts in sorted(by_file.items()):
        n = sum(v for status, v in counts.items() if status != "not checked")
        print(f"  {module}: {counts['killed']}/{n} = {counts['killed'] / max(n, 1):.3f}")
    survivors = sorted(name for name, status in statuses.items()
                       if status not in KILLED and status != "not checked")
    print(f"not killed ({len(survivors)}):")
    for name in survivors:
        print(f"  {name}: {statuses[name]}")


def _has_no_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None


if __name__ == "__main__":
    main()
