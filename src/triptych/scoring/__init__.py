"""Scoring models offline: batch jobs over files."""
