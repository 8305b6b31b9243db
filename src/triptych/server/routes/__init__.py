"""The server's routes, one module per kind: ``store`` (the metadata store contract under
``/api/v1``), ``health`` and ``docs``."""
