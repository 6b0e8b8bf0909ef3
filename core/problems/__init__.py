"""Typical problems (eTOM Problem Handling): top intents and escalation reasons, rising-volume alerts, clusters of
what the bot did not understand."""
