"""checkout_kit: card payments through CloudPayments for Python shops.

The core modules (:mod:`checkout_kit.cards`, :mod:`checkout_kit.cryptogram`,
:mod:`checkout_kit.money`, :mod:`checkout_kit.reasons`, :mod:`checkout_kit.errors`,
:mod:`checkout_kit.notifications`, :mod:`checkout_kit.threeds`) are pure: they import
neither Flask nor the network. Importing this package imports none of them eagerly.
"""

__version__ = "0.1.0"
