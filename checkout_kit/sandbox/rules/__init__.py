"""The gateway's rules: payments, 3-D Secure, tokens, subscriptions, orders, the clock."""
