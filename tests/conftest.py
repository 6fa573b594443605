"""Suite-wide test settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# CI runs on a loaded 2-core machine: RSA and in-process HTTP examples can take longer
# than hypothesis's default 200 ms deadline without anything being wrong.
settings.register_profile(
    "checkout_kit", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("checkout_kit")
