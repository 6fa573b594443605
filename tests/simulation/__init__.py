"""The deterministic simulation of shop, gateway and network (issue 14 §3).

One seeded :class:`random.Random` schedules everything; one seed replays one whole run.

==================  ===================================================================
``world.py``        the model: the sandbox on a virtual clock, two ``CheckoutKit`` app
                    instances over one ledger database, the captured notifications
``actions.py``      the actions table: pay (form, widget, two tabs, tampered amount),
                    3-D Secure, confirm/void/refund from the shop and the back office,
                    refresh/reconcile, deliveries (late, twice, out of order), the clock
``faults.py``       the faults table, applied to every gateway call of the shop
``invariants.py``   what must hold after each step and at quiescence; which §1 defect a
                    violation is (``classify``)
``runner.py``       one run (``run_seed``), quiescence, databases, ``KNOWN_DEFECTS``
``__main__.py``     ``python -m tests.simulation --seeds N [--start S] [--db URL]``
==================  ===================================================================

Why a hand-rolled scheduler rather than hypothesis's ``RuleBasedStateMachine``: the
world's own randomness (which fault a call meets, in the middle of a library call;
which instance a notification reaches) has to come from the same seed as the choice
of steps, and a run has to be replayable from a plain integer printed in CI, with a
readable history. Hypothesis's shrinking would be welcome, but its data is drawn only
in rules, not from inside the transport, and its replay needs its database.

pytest: ``tests/simulation/test_simulation.py`` runs seeds 0, 1, 2… for
``CHECKOUT_KIT_SIM_SECONDS`` (60) on SQLite, and on PostgreSQL too when
``CHECKOUT_KIT_TEST_DATABASE_URL`` is set.
"""
