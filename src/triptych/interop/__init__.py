"""Bridges to other tools' stores: ``mlflow_import`` copies an MLflow tracking store in."""
