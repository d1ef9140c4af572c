"""Many rows, one statement: `INSERT … VALUES (…), (…) RETURNING id`.

tortoise's `bulk_create` gives no ids back on SQLite, and the pipeline needs them (a
message points at its ticket, an outbox row at its message). Like Django's bulk_create on
PostgreSQL and on SQLite ≥ 3.35, this relies on RETURNING listing the ids in the order
of the VALUES rows (`execute_query_dict`: tortoise's asyncpg `execute_query` drops
what an INSERT returns). Values go through each field's own `to_db_value`, exactly as
tortoise's `save()` does, and the rows come back as model instances.

Example:
    >>> rows = await insert(Contact, [{"name": "María", "created_at": now}])  # doctest: +SKIP
    >>> rows[0].id                                                            # doctest: +SKIP
    17
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, TypeVar

from tortoise.models import Model

M = TypeVar("M", bound=Model)

MAX_PARAMETERS = 30_000  # below SQLite's 32766 and PostgreSQL's 32767


@functools.cache
def _layout(model: type[Model]) -> tuple[tuple[str, str, Any], ...]:
    """(field name, column, field) for every column an INSERT writes, pk excluded."""
    meta = model._meta
    return tuple(
        (name, column, meta.fields_map[name])
        for name, column in meta.fields_db_projection.items()
        if name != meta.pk_attr and not meta.fields_map[name].generated
    )


def _default(field: Any) -> Any:
    default = field.default
    return default() if callable(default) else default


@functools.cache
def _statement(model: type[Model], rows: int, dialect: str) -> str:
    layout = _layout(model)
    width = len(layout)
    if dialect == "postgres":
        groups = (", ".join(f"${r * width + c + 1}" for c in range(width)) for r in range(rows))
    else:
        placeholders = ", ".join("?" * width)
        groups = (placeholders for _ in range(rows))
    values = ", ".join(f"({group})" for group in groups)
    columns = ", ".join(f'"{column}"' for _, column, _ in layout)
    pk = model._meta.db_pk_column
    # Names come from the model's metadata, values only ever through parameters.
    table = model._meta.db_table
    return f'INSERT INTO "{table}" ({columns}) VALUES {values} RETURNING "{pk}"'  # noqa: S608


async def insert(model: type[M], rows: Sequence[dict[str, Any]]) -> list[M]:
    """Insert `rows` (field name → value; missing fields take their default) in as few
    statements as the parameter limit allows; returns saved instances, in order."""
    complete, ids = await _insert(model, rows)
    pk = model._meta.pk_attr
    return [_saved(model, {pk: got, **row}) for row, got in zip(complete, ids, strict=True)]


def _saved(model: type[M], values: dict[str, Any]) -> M:
    """A saved instance from Python values (what `_init_from_db` does for DB values,
    minus converting them)."""
    instance = model.__new__(model)
    instance._partial = False
    instance._saved_in_db = True
    instance._custom_generated_pk = False
    instance._await_when_save = {}
    instance.__dict__.update(values)
    return instance


async def insert_ids(model: type[Model], rows: Sequence[dict[str, Any]]) -> list[int]:
    """`insert` when only the new ids are needed (cheaper: no instances are built)."""
    return (await _insert(model, rows))[1]


async def _insert(model: type[Model], rows: Sequence[dict[str, Any]]
                  ) -> tuple[list[dict[str, Any]], list[int]]:
    if not rows:
        return [], []
    layout = _layout(model)
    names = {name for name, _, _ in layout}
    db = model._meta.db
    dialect = db.capabilities.dialect
    per_statement = max(1, min(500, MAX_PARAMETERS // len(layout)))
    complete: list[dict[str, Any]] = []
    for row in rows:
        if unknown := row.keys() - names:
            raise TypeError(f"{model.__name__} has no field(s) {sorted(unknown)}")
        complete.append({name: row[name] if name in row else _default(field)
                         for name, _, field in layout})
    pk = model._meta.db_pk_column
    ids: list[int] = []
    for start in range(0, len(complete), per_statement):
        chunk = complete[start:start + per_statement]
        params = [field.to_db_value(row[name], model)
                  for row in chunk for name, _, field in layout]
        returned = await db.execute_query_dict(_statement(model, len(chunk), dialect), params)
        if len(returned) != len(chunk):
            raise RuntimeError(f"{model.__name__}: inserted {len(chunk)} rows, "
                               f"got {len(returned)} ids back")
        ids += [got[pk] for got in returned]
    return complete, ids


async def update(model: type[Model], fields: Sequence[str],
                 rows: Sequence[dict[str, Any]]) -> None:
    """`UPDATE … SET <fields> WHERE pk = …` for every row (each a dict with the pk and
    `fields`), sent as one executemany.

    Example: `await update(OutboxItem, ["status"], [{"id": 3, "status": "sent"}])`
    """
    if not rows:
        return
    meta = model._meta
    db = meta.db
    columns = [meta.fields_db_projection[name] for name in fields]
    if db.capabilities.dialect == "postgres":
        marks = [f"${i + 1}" for i in range(len(columns) + 1)]
    else:
        marks = ["?"] * (len(columns) + 1)
    assignments = ", ".join(f'"{c}" = {m}' for c, m in zip(columns, marks, strict=False))
    statement = (f'UPDATE "{meta.db_table}" SET {assignments} '  # noqa: S608 (names from meta)
                 f'WHERE "{meta.db_pk_column}" = {marks[-1]}')
    converters = [meta.fields_map[name] for name in fields]
    pk = meta.pk
    await db.execute_many(statement, [
        [field.to_db_value(row[name], model) for name, field in zip(fields, converters,
                                                                     strict=True)]
        + [pk.to_db_value(row[meta.pk_attr], model)]
        for row in rows])
