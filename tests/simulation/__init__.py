"""The deterministic simulation of shop, gateway and network (issue 14 §3)."""
