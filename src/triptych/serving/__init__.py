"""Serving models: the scoring server, its plan, request ids and the prediction log."""
