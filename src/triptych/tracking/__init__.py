"""Experiment tracking: runs, their triptych fingerprint, and the fluent logging API."""
