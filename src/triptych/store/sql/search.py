"""The SQL of run search: one statement per filter *shape*, values bound at execution."""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, select

from triptych.errors import InvalidInput
from triptych.store.entities import Lifecycle
from triptych.store.search import Comparison, OrderBy
from triptych.store.sql import schema as db
from triptych.store.sql.rows import ATTRIBUTE_COLUMNS, RUN_COLUMNS

Filter = tuple[str, str, str]  # entity, key, operator: a comparison without its value


def shape(comparisons: list[Comparison]) -> tuple[Filter, ...]:
    return tuple((c.entity, c.key, c.op) for c in comparisons)


@functools.lru_cache(maxsize=512)
def search_statement(
    filters: tuple[Filter, ...], orders: tuple[OrderBy, ...], include_deleted: bool
) -> Any:
    """The SELECT for a filter's *shape*, values left as bind parameters (``v0``, ``v1``…,
    ``exp_ids``, ``offset``, ``limit``). Cached: building a statement costs more than running
    it, and a UI or a script repeats a few shapes with new values."""
    query = select(*RUN_COLUMNS).where(
        db.runs.c.experiment_id.in_(bindparam("exp_ids", expanding=True))
    )
    if not include_deleted:
        query = query.where(db.runs.c.lifecycle == Lifecycle.ACTIVE.value)
    # Metric filters join latest_metrics once per key (faster than EXISTS on both
    # dialects); an ordering on a filtered metric reuses that join.
    metric_joins: dict[str, Any] = {}
    for i, (entity, key, op) in enumerate(filters):
        value: Any = bindparam(f"v{i}", expanding=op in ("IN", "NOT IN"))
        if entity == "metric":
            alias = metric_joins.get(key)
            if alias is None:
                alias = metric_joins[key] = db.latest_metrics.alias(f"filter_{len(metric_joins)}")
                query = query.join(alias, _metric_join(alias, key))
            query = query.where(_compare(alias.c.value, op, value))
        else:
            query = query.where(_condition(entity, key, op, value))
    for i, order in enumerate(orders):
        query = _apply_order(query, order, i, metric_joins)
    query = query.order_by(db.runs.c.start_time.desc(), db.runs.c.id.desc())
    return query.offset(bindparam("offset")).limit(bindparam("limit"))


def _compare(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "LIKE":
        return column.like(value)
    if op == "ILIKE":
        return func.lower(column).like(func.lower(value))
    if op == "IN":
        return column.in_(value)
    if op == "NOT IN":
        return column.not_in(value)
    raise InvalidInput(f"unknown operator {op!r}")  # pragma: no cover - parser guards this


def _metric_join(alias: Any, key: str) -> ColumnElement[bool]:
    return and_(alias.c.run_id == db.runs.c.id, alias.c.key == key, alias.c.is_nan.is_(False))


def _condition(entity: str, key: str, op: str, value: Any) -> ColumnElement[bool]:
    """Param, tag and attribute comparisons against ``value`` (a bind parameter); metrics
    are joined in :func:`search_statement`."""
    if entity in ("param", "tag"):
        table = db.params if entity == "param" else db.tags
        return exists().where(
            table.c.run_id == db.runs.c.id, table.c.key == key, _compare(table.c.value, op, value)
        )
    return _compare(ATTRIBUTE_COLUMNS[key], op, value)


def _apply_order(query: Any, order: OrderBy, index: int, metric_joins: dict[str, Any]) -> Any:
    if order.entity == "attribute":
        column: Any = ATTRIBUTE_COLUMNS[order.key]
    elif order.entity == "metric" and order.key in metric_joins:
        column = metric_joins[order.key].c.value
    else:
        table = {"metric": db.latest_metrics, "param": db.params, "tag": db.tags}[order.entity]
        alias = table.alias(f"order_{index}")
        if order.entity == "metric":
            join = _metric_join(alias, order.key)
        else:
            join = and_(alias.c.run_id == db.runs.c.id, alias.c.key == order.key)
        query = query.outerjoin(alias, join)
        column = alias.c.value
    ordered = column.asc() if order.ascending else column.desc()
    return query.order_by(ordered.nulls_last())


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError) as e:
        raise InvalidInput(
            f"invalid page token {token!r}", hint="pass the token a search returned"
        ) from e
