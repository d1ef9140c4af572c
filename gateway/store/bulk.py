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
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from tortoise import fields
from tortoise.exceptions import ValidationError
from tortoise.models import Model

from gateway.store.db import sqlite_time

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


# SQLite stores a datetime as UTC text (gateway.store.db). Converting here rather than in
# sqlite3's adapter keeps that Python work off the database thread (where it holds the
# GIL), and a batch's rows share a few instants (now, its due times): each is converted
# once.
_utc_text = functools.lru_cache(maxsize=1024)(sqlite_time)


def _default(field: Any) -> Any:
    default = field.default
    return default() if callable(default) else default


@functools.cache
def _converter(model: type[Model], field: Any, dialect: str) -> Callable[[Any], Any]:
    """`field.to_db_value` for one column, with the common cases done directly.

    Converting ~150 values per new ticket through tortoise's generic path was a fifth of
    the pipeline's CPU. Plain values of the field's own type pass as they are (a
    CharField still checks its length); anything else (a naive datetime, an int for a
    bool, a JSON string…) goes through tortoise's own conversion and validation.
    """
    general = functools.partial(field.to_db_value, instance=model)
    kind = field.field_type
    if isinstance(field, fields.CharField):
        limit = field.max_length

        def char(value: Any) -> Any:
            if value.__class__ is str:
                if len(value) > limit:
                    raise ValidationError(f"{field.model_field_name}: Length of '{value}' "
                                          f"{len(value)} > {limit}")
                return value
            return None if value is None else general(value)
        return char
    if isinstance(field, fields.DatetimeField) and dialect == "sqlite":
        def text(value: Any) -> Any:
            if value.__class__ is datetime and value.tzinfo is not None:
                return _utc_text(value)
            return None if value is None else general(value)
        return text
    if isinstance(field, fields.DatetimeField):
        def moment(value: Any) -> Any:
            if value is None or (value.__class__ is datetime and value.tzinfo is not None):
                return value  # the driver converts it (gateway.store.db: UTC text on SQLite)
            return general(value)
        return moment
    if isinstance(field, fields.JSONField):
        encode = field.encoder

        def document(value: Any) -> Any:
            if value is None and field.null:
                return None
            return encode(value) if isinstance(value, dict | list) else general(value)
        return document
    if kind in (int, bool) or isinstance(field, fields.TextField):
        if field.validators and kind is not int:
            return general

        def plain(value: Any) -> Any:
            return value if value is None or value.__class__ is kind else general(value)
        return plain
    return general


_MISSING = object()


@functools.cache
def _written(model: type[Model], given: frozenset[str], dialect: str
             ) -> tuple[tuple[str, str, Callable[[Any], Any], Any], ...]:
    """(field name, column, converter, field) for the columns an INSERT of rows with the
    fields `given` writes: those, and every other one whose default is not NULL. A
    nullable column left out is NULL, which is what its default would have written."""
    return tuple(
        (name, column, _converter(model, field, dialect), field)
        for name, column, field in _layout(model)
        if name in given or field.default is not None or not field.null)


@functools.cache
def _flattener(model: type[Model], given: frozenset[str], dialect: str
               ) -> Callable[[Sequence[dict[str, Any]]], list[Any]]:
    """A function turning rows into the flat parameter list of one INSERT, generated once
    per model and set of fields: the same values as `convert(row.get(name, default))` per
    column, written out as one expression per column with the common cases (text within
    its length, an aware datetime on SQLite, a plain int or bool, a JSON dict or list,
    None) done inline and anything else through the field's converter.

    The generic loop (a dict lookup, a default and a converter call for each of ~150
    values per new ticket) was the pipeline's largest piece of Python work after Jinja.
    """
    names: dict[str, Any] = {"_MISSING": _MISSING, "_utc_text": _utc_text,
                             "datetime": datetime}
    parts: list[str] = []
    for index, (name, _, convert, field) in enumerate(_written(model, given, dialect)):
        def slow(value: Any, convert: Any = convert, field: Any = field) -> Any:
            return convert(_default(field) if value is _MISSING else value)
        names[f"slow{index}"] = slow
        if name not in given:
            if callable(field.default) or not isinstance(field.default, str | int | float):
                parts.append(f"slow{index}(_MISSING)")
            else:  # a constant default: converted (and checked) once
                names[f"const{index}"] = slow(_MISSING)
                parts.append(f"const{index}")
            continue
        value = f"(v := row.get({name!r}, _MISSING))"
        if isinstance(field, fields.CharField):
            parts.append(f"v if ({value}.__class__ is str and len(v) <= "
                         f"{int(field.max_length)}) or v is None else slow{index}(v)")
        elif isinstance(field, fields.DatetimeField) and dialect == "sqlite":
            parts.append(f"_utc_text(v) if {value}.__class__ is datetime and "
                         f"v.tzinfo is not None else slow{index}(v)")
        elif field.field_type in (int, bool) and not field.validators:
            kind = field.field_type.__name__
            parts.append(f"v if {value}.__class__ is {kind} or v is None else slow{index}(v)")
        elif isinstance(field, fields.TextField) and not field.validators:
            parts.append(f"v if {value}.__class__ is str or v is None else slow{index}(v)")
        elif isinstance(field, fields.JSONField):
            names[f"encode{index}"] = field.encoder
            parts.append(f"encode{index}(v) if {value}.__class__ is dict or "
                         f"v.__class__ is list else slow{index}(v)")
        else:
            parts.append(f"slow{index}({value})")
    source = ("def flatten(rows):\n    out = []\n    add = out.extend\n"
              "    for row in rows:\n        add((" + ", ".join(parts) + ",))\n    return out\n")
    exec(compile(source, f"<bulk insert {model.__name__}>", "exec"), names)  # noqa: S102
    return names["flatten"]  # type: ignore[no-any-return]


@functools.cache
def _statement(model: type[Model], columns: tuple[str, ...], rows: int, dialect: str,
               returning: bool = True) -> str:
    width = len(columns)
    if dialect == "postgres":
        groups = (", ".join(f"${r * width + c + 1}" for c in range(width)) for r in range(rows))
    else:
        placeholders = ", ".join("?" * width)
        groups = (placeholders for _ in range(rows))
    values = ", ".join(f"({group})" for group in groups)
    names = ", ".join(f'"{column}"' for column in columns)
    pk = model._meta.db_pk_column
    # Names come from the model's metadata, values only ever through parameters.
    table = model._meta.db_table
    back = f' RETURNING "{pk}"' if returning else ""
    return f'INSERT INTO "{table}" ({names}) VALUES {values}{back}'  # noqa: S608


async def insert(model: type[M], rows: Sequence[dict[str, Any]]) -> list[M]:
    """Insert `rows` (field name → value; missing fields take their default) in as few
    statements as the parameter limit allows; returns saved instances, in order."""
    ids = await insert_ids(model, rows)
    pk = model._meta.pk_attr
    constant, made = _defaults(model)
    return [_saved(model, {**constant, **{name: make() for name, make in made
                                          if name not in row}, **row, pk: got})
            for row, got in zip(rows, ids, strict=True)]


@functools.cache
def _defaults(model: type[Model]) -> tuple[dict[str, Any], tuple[tuple[str, Any], ...]]:
    """The model's defaults: (field → constant value, (field, factory) pairs such as
    `list` for a JSON list, called for each new instance)."""
    constant: dict[str, Any] = {}
    made: list[tuple[str, Any]] = []
    for name, _, field in _layout(model):
        if callable(field.default):
            made.append((name, field.default))
        else:
            constant[name] = field.default
    return constant, tuple(made)


def _saved(model: type[M], values: dict[str, Any]) -> M:
    """A saved instance from Python values (what `_init_from_db` does for DB values,
    minus converting them)."""
    instance = model.__new__(model)
    # As tortoise's own _init_from_db: straight into __dict__, past Model.__setattr__.
    instance.__dict__.update(_partial=False, _saved_in_db=True, _custom_generated_pk=False,
                             _await_when_save={})
    instance.__dict__.update(values)
    return instance


async def insert_ids(model: type[Model], rows: Sequence[dict[str, Any]]) -> list[int]:
    """`insert` when only the new ids are needed (cheaper: no instances are built)."""
    return await _insert(model, rows, returning=True)


async def insert_rows(model: type[Model], rows: Sequence[dict[str, Any]]) -> None:
    """`insert` when nothing is needed back (audit entries, scheduled actions): without
    RETURNING, SQLite writes each row ~20 % faster.

    Example: `await insert_rows(AuditEvent, [{"actor": "gateway", "action": "created"…}])`
    """
    await _insert(model, rows, returning=False)


async def _insert(model: type[Model], rows: Sequence[dict[str, Any]], *,
                  returning: bool) -> list[int]:
    if not rows:
        return []
    given = frozenset(rows[0]) if len(rows) == 1 else frozenset().union(*rows)
    if unknown := given - {name for name, _, _ in _layout(model)}:
        raise TypeError(f"{model.__name__} has no field(s) {sorted(unknown)}")
    db = model._meta.db
    dialect = db.capabilities.dialect
    written = _written(model, given, dialect)
    flatten = _flattener(model, given, dialect)
    columns = tuple(column for _, column, _, _ in written)
    per_statement = max(1, min(500, MAX_PARAMETERS // len(written)))
    pk = model._meta.db_pk_column
    ids: list[int] = []
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        statement = _statement(model, columns, len(chunk), dialect, returning)
        if not returning:
            await db.execute_query(statement, flatten(chunk))
            continue
        returned = await db.execute_query_dict(statement, flatten(chunk))
        if len(returned) != len(chunk):
            raise RuntimeError(f"{model.__name__}: inserted {len(chunk)} rows, "
                               f"got {len(returned)} ids back")
        ids += [got[pk] for got in returned]
    return ids


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
    marks = _marks(db, len(columns) + 1)
    assignments = ", ".join(f'"{c}" = {m}' for c, m in zip(columns, marks, strict=False))
    statement = (f'UPDATE "{meta.db_table}" SET {assignments} '  # noqa: S608 (names from meta)
                 f'WHERE "{meta.db_pk_column}" = {marks[-1]}')
    dialect = db.capabilities.dialect
    converters = [_converter(model, meta.fields_map[name], dialect) for name in fields]
    key = _converter(model, meta.pk, dialect)
    await db.execute_many(statement, [
        [convert(row[name]) for name, convert in zip(fields, converters, strict=True)]
        + [key(row[meta.pk_attr])]
        for row in rows])


def _marks(db: Any, count: int, after: int = 0) -> list[str]:
    """The driver's parameter marks for `count` values (`after` values already marked):
    `$1, $2…` or `?, ?…`."""
    if db.capabilities.dialect == "postgres":
        return [f"${n}" for n in range(after + 1, after + count + 1)]
    return ["?"] * count


@functools.cache
def _reader(model: type[Model], name: str) -> Callable[[Any], Any]:
    """`to_python_value` for one column read back, skipped for plain ints and text."""
    field = model._meta.fields_map[name]
    if field.field_type in (int, str):
        return lambda value: value
    return field.to_python_value


def _where_in(model: type[Model], among: dict[str, Collection[Any]]
              ) -> tuple[str, list[Any]] | None:
    meta = model._meta
    db = meta.db
    dialect = db.capabilities.dialect
    conditions: list[str] = []
    params: list[Any] = []
    for name, values in among.items():
        if not values:
            return None  # nothing can match
        convert = _converter(model, meta.fields_map[name], dialect)
        marks = _marks(db, len(values), len(params))
        conditions.append(f'"{meta.fields_db_projection[name]}" IN ({", ".join(marks)})')
        params += [convert(value) for value in values]
    return " AND ".join(conditions), params


async def where_in(model: type[Model], fields: Sequence[str],
                   **among: Collection[Any]) -> list[dict[str, Any]]:
    """`SELECT fields FROM … WHERE a IN (…) AND b IN (…)`, rows as dicts of Python values.

    For the pipeline's lookups, once per batch: building the same query with tortoise
    cost several times what SQLite spends answering it.

    Example: `await where_in(Identity, ["contact_id"], channel={"telegram"}, address=["1"])`
    """
    if (where := _where_in(model, among)) is None:
        return []
    meta = model._meta
    columns = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in fields)
    rows = await meta.db.execute_query(  # names from meta, values only as parameters
        f'SELECT {columns} FROM "{meta.db_table}" WHERE {where[0]}', where[1])  # noqa: S608
    readers = [_reader(model, name) for name in fields]
    return [{name: read(value) for name, read, value in zip(fields, readers, row, strict=True)}
            for row in rows[1]]


async def newest(model: type[Model], group: Sequence[str],
                 **among: Collection[Any]) -> dict[tuple[Any, ...], int]:
    """The highest primary key for each value of the columns `group`, among the rows
    where each named column is among its values: `SELECT group, MAX(pk) … GROUP BY group`.

    Example: `await newest(Ticket, ["channel", "conversation"], channel={"telegram"},
    conversation=["12345"])` → `{("telegram", "12345"): 1042}`
    """
    if (where := _where_in(model, among)) is None:
        return {}
    meta = model._meta
    columns = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in group)
    rows = await meta.db.execute_query(
        f'SELECT {columns}, MAX("{meta.db_pk_column}") FROM "{meta.db_table}" '  # noqa: S608
        f"WHERE {where[0]} GROUP BY {columns}", where[1])
    width = len(group)
    return {(values := tuple(row))[:width]: values[width] for row in rows[1]}


async def increment(model: type[Model], field: str, by: int, **where: Any) -> list[int]:
    """`UPDATE … SET field = field + by WHERE … RETURNING field`, one statement (tortoise's
    update returns only a count, and reading the row back is a second round trip).

    Example: `await increment(Counter, "value", 3, name="ticket")` → `[1044]` (or `[]`)
    """
    meta = model._meta
    db = meta.db
    column = meta.fields_db_projection[field]
    marks = _marks(db, 1 + len(where))
    conditions = " AND ".join(f'"{meta.fields_db_projection[name]}" = {mark}'
                              for name, mark in zip(where, marks[1:], strict=True))
    statement = (f'UPDATE "{meta.db_table}" SET "{column}" = "{column}" + {marks[0]} '  # noqa: S608
                 f'WHERE {conditions} RETURNING "{column}"')
    rows = await db.execute_query_dict(statement, [by, *where.values()])
    return [row[column] for row in rows]


async def maximum(model: type[Model], field: str) -> Any:
    """`SELECT MAX(field)` of the whole table (None when it is empty), without building
    a tortoise query: the pipeline asks this once per batch."""
    meta = model._meta
    column = meta.fields_db_projection[field]
    rows = await meta.db.execute_query_dict(
        f'SELECT MAX("{column}") AS m FROM "{meta.db_table}"')  # noqa: S608
    return rows[0]["m"] if rows else None
