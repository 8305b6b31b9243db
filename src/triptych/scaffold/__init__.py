"""Scaffolding and inspection of projects: ``triptych init``, ``ci`` and ``doctor``."""
