"""The OpenAPI document of a scoring server, generated from the served model's signature.

Clients (and code generators) learn the exact input columns and their JSON types from
``GET /openapi.json`` instead of from a wiki page that drifts from the model.
"""

from __future__ import annotations

from typing import Any

from triptych.serving.payload import JSON_TYPES, Columns


def _column_schema(dtype: str | None, nullable: bool) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": JSON_TYPES[dtype]} if dtype else {}
    if dtype == "datetime":
        schema["format"] = "date-time"
    if nullable and schema:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def _error_response(what: str) -> dict[str, Any]:
    return {
        "description": what,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def document(
    columns: Columns, *, title: str, version: str, output: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for ``columns`` (``output`` is the signature's output spec)."""
    cells = [_column_schema(d, columns.allow_missing) for d in columns.dtypes]
    record = {
        "type": "object",
        "properties": dict(zip(columns.names, cells, strict=True)),
        "required": list(columns.names),
    }
    row = {
        "type": "array",
        "prefixItems": cells,
        "minItems": len(columns.names),
        "maxItems": len(columns.names),
    }
    prediction: dict[str, Any] = {}
    if output and output.get("dtype") in JSON_TYPES:
        prediction = {"type": JSON_TYPES[output["dtype"]]}
    example = {n: 0 for n in columns.names}
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {
            "/predict": {
                "post": {
                    "summary": "Predict for one or more rows",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Records"},
                                        {"$ref": "#/components/schemas/Split"},
                                        {"$ref": "#/components/schemas/Data"},
                                    ]
                                },
                                "example": {"records": [example]},
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction per row",
                            "headers": {"X-Request-Id": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Predictions"}
                                }
                            },
                        },
                        "400": _error_response("Malformed JSON"),
                        "413": _error_response("Body over the size limit"),
                        "415": _error_response("Content type is not application/json"),
                        "422": _error_response("Invalid input, with one error per field"),
                        "500": _error_response("The model failed; the request id is logged"),
                    },
                }
            },
            "/health": {"get": {"summary": "The process is alive", "responses": _ok()}},
            "/ready": {"get": {"summary": "The model is loaded", "responses": _ok()}},
            "/metadata": {
                "get": {"summary": "Model, version, signature, fingerprint", "responses": _ok()}
            },
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": _ok()}},
        },
        "components": {
            "schemas": {
                "Record": record,
                "Records": {
                    "type": "object",
                    "required": ["records"],
                    "properties": {
                        "records": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/Record"},
                        }
                    },
                },
                "Split": {
                    "type": "object",
                    "required": ["columns", "data"],
                    "properties": {
                        "columns": {
                            "type": "array",
                            "items": {"type": "string", "enum": list(columns.names)},
                        },
                        "data": {"type": "array", "minItems": 1, "items": {"type": "array"}},
                    },
                },
                "Data": {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": {"type": "array", "minItems": 1, "items": row}},
                },
                "Predictions": {
                    "type": "object",
                    "properties": {
                        "predictions": {"type": "array", "items": prediction},
                        "model": {
                            "type": "object",
                            "properties": {
                                "name": {"type": ["string", "null"]},
                                "version": {"type": ["integer", "null"]},
                                "uri": {"type": "string"},
                            },
                        },
                        "request_id": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "properties": {
                        "error": {"type": "string"},
                        "detail": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "loc": {"type": "array"},
                                    "msg": {"type": "string"},
                                    "type": {"type": "string"},
                                },
                            },
                        },
                        "request_id": {"type": "string"},
                    },
                },
            }
        },
    }


def _ok() -> dict[str, Any]:
    return {"200": {"description": "OK"}}
