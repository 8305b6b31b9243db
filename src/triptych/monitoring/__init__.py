"""Monitoring: how production data and predictions move away from what a model was trained on.

``drift`` compares a reference frame with a current one, column by column; later modules add
monitors over the prediction log, delayed labels, alerts and the retraining loop.
"""
