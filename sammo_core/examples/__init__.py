"""Example programs and small data files shipped with sammo-core (see README.md)."""
