"""The simulation builds its own worlds (tests/simulation/world.py); nothing shared."""
