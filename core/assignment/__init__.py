"""Automatic assignment: queue modes, agents' presence (online, away, offline) and languages, returns."""
