"""The one SQL statement the ORM cannot write for us: INSERT … ON CONFLICT … RETURNING id.

Effectively-once rests on it: an event, a step execution or an idle timer is
written in a single statement whose unique key turns a repeat into nothing
(or into an update), and the caller learns whether it was new. PostgreSQL and
SQLite (3.35+) both speak this syntax.
"""

import contextlib
import datetime
import functools
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import InterfaceError, OperationalError, connection
from django.db.models import F, Lookup

# What a lost connection raises (a PostgreSQL restart, a network cut): worth another try, unlike a bug.
DATABASE_AWAY = (OperationalError, InterfaceError)


def drop_broken_connection():
    """Close a connection that died, so the next query opens a new one.

    Django only does this between requests (and Celery's Django fix-up
    between tasks); a worker in the middle of a task would keep failing on
    the dead one. Inside a transaction it is left to the transaction's owner.
    """
    if not connection.in_atomic_block:
        connection.close()


@functools.cache
def _column_kinds(model) -> tuple[set[str], set[str]]:
    """The model's JSON columns and its datetime columns."""
    kinds = {field.column: field.get_internal_type() for field in model._meta.concrete_fields}
    return ({column for column, kind in kinds.items() if kind == "JSONField"},
            {column for column, kind in kinds.items() if kind == "DateTimeField"})


class AnyOf(Lookup):
    """``field = ANY(%s)``, the values as one array parameter (PostgreSQL; elsewhere ``IN (…)``).

    Used as an expression, e.g. ``Contact.objects.filter(any_of("email", emails))``: a batch looks
    up a thousand keys at once, and ``__in`` would make the driver parse a thousand placeholders
    and quote a thousand values into the statement. (Not registered as a lookup on every field:
    a host's models are none of this app's business.)
    """

    lookup_name = "any"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        values = [self.lhs.output_field.get_db_prep_value(v, connection, prepared=False) for v in self.rhs]
        if connection.vendor == "postgresql":
            array = _array_literal(values)
            if array is None:
                return f"{lhs} = ANY(%s)", [*params, values]
            return f"{lhs} = ANY(%s::{array[1]}[])", [*params, array[0]]
        if not values:
            return "1 = 0", params
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*params, *values]


def _array_literal(values: list) -> tuple[str, str] | None:
    """(``{1,2,NULL}``, ``bigint``) or (``{"a","b\\"c"}``, ``text``): a list of ints, or of strings, as one
    PostgreSQL array literal and its element type; None for anything else (the driver's own dumping).

    The driver dumps a list element by element in Python, its largest single cost in a batch; one
    string, built by ``str.join`` and cast in the statement, is not.
    """
    kinds = {type(value) for value in values if value is not None}
    if kinds == {int}:
        return "{" + ",".join("NULL" if value is None else str(value) for value in values) + "}", "bigint"
    if kinds == {str}:
        return "{" + ",".join("NULL" if value is None else '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
                              for value in values) + "}", "text"
    return None


def any_of(field: str, values) -> AnyOf:
    return AnyOf(F(field), list(values))


def insert_on_conflict(model, values: dict, *, conflict: list[str], update: str = "") -> int | None:
    """Insert ``values`` (JSON columns already serialized); return the new id, or None on a conflict.

    ``update`` is a ``DO UPDATE SET …`` clause (``{table}`` is replaced by the
    quoted table name, ``excluded.<column>`` is the proposed row); without it
    a conflicting row is left alone.
    """
    table = connection.ops.quote_name(model._meta.db_table)
    json_columns, datetime_columns = _column_kinds(model)
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    columns = ", ".join(connection.ops.quote_name(column) for column in values)
    placeholders = ", ".join(f"%s{cast}" if column in json_columns else "%s" for column in values)
    action = f"DO UPDATE SET {update.format(table=table)}" if update else "DO NOTHING"
    # Times in the column's stored form, as the ORM writes them: on SQLite an aware datetime passed raw
    # is stored as "…+00:00" text, which the ORM's "due_at <= now" compares wrongly (PostgreSQL: as is).
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(value) if column in datetime_columns else value for column, value in values.items()]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"
            f" ON CONFLICT ({', '.join(conflict)}) {action} RETURNING id",
            params,
        )
        row = cursor.fetchone()
    return row[0] if row else None


@contextlib.contextmanager
def fast_timestamps():
    """Within the block, ``timestamptz`` values are parsed by ``datetime.fromisoformat`` (C).

    Django's loader subclasses psycopg's pure-Python one (a regular expression per value); with
    several timestamps per contact, event and enrolment that was over a tenth of a batch's Python
    (docs/performance.md). The values are the same: the instant, in the timezone Django's loader
    gives them. Anything ``fromisoformat`` does not read (a non-ISO ``DateStyle``, infinity, years
    BC), or Django without time zones, goes to Django's own loader. Only the connection's map is
    changed (psycopg copies it for each connection), and only for the block.
    """
    adapters = getattr(connection.connection, "adapters", None) if connection.vendor == "postgresql" else None
    if adapters is None:  # SQLite, psycopg2
        yield
        return
    from psycopg.pq import Format

    django_loader = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)
    if django_loader is None or getattr(django_loader, "timezone", None) is None:
        yield
        return

    class FastLoader(django_loader):  # keeps ``timezone``, which Django's cursors compare with theirs
        def load(self, data):
            try:
                return datetime.datetime.fromisoformat(bytes(data).decode()).astimezone(self.timezone)
            except ValueError:
                return super().load(data)

    adapters.register_loader("timestamptz", FastLoader)
    try:
        yield
    finally:
        adapters.register_loader("timestamptz", django_loader)


def create_database_if_missing(database: dict) -> bool:
    """Create a PostgreSQL database named in Django's ``DATABASES`` entry if it does not exist yet.

    For development commands (the demo, the benchmarks) that are pointed at a
    fresh server with ``DATABASE_URL``: they should start, not fail with
    "database … does not exist". Connects to the server's ``postgres``
    database; returns True when it created the database.
    """
    import psycopg
    from psycopg import sql

    conninfo = {"host": database.get("HOST"), "port": database.get("PORT"), "user": database.get("USER"),
                "password": database.get("PASSWORD") or None, "dbname": "postgres", "autocommit": True}
    with psycopg.connect(**{key: value for key, value in conninfo.items() if value}) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database["NAME"]]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database["NAME"])))
        return True


# --- set-based writes: one statement for many rows -----------------------------------------------
#
# Batches (engine/processing.py) write hundreds of rows of one kind at once. Django's bulk_create
# and bulk_update quote every value into the SQL text (bulk_update with a CASE per row and field),
# and a driver array per column is dumped element by element in Python. The rows travel instead
# as one JSON document (encoded in C) that PostgreSQL turns back into rows (``jsonb_to_recordset``):
# the cheapest way found on this machine (docs/performance.md).

class _RowEncoder(DjangoJSONEncoder):
    """DjangoJSONEncoder, but datetimes keep their microseconds (it cuts them to milliseconds)."""

    def default(self, o):
        if isinstance(o, datetime.datetime):
            return o.isoformat()
        return super().default(o)


@functools.lru_cache(maxsize=None)
def _columns(model) -> dict:
    """{attname: (field, SQL type)} of every concrete column (attname is the column name in this app)."""
    return {field.attname: (field, field.rel_db_type(connection) if field.is_relation else field.db_type(connection))
            for field in model._meta.concrete_fields}


def _recordset(model, names) -> str:
    """``jsonb_to_recordset(%s::jsonb) AS r(<name> <type>, …)`` for these columns."""
    columns = _columns(model)
    return f"jsonb_to_recordset(%s::jsonb) AS r({', '.join(f'{name} {columns[name][1]}' for name in names)})"


def _raw_execute(sql: str, params: list, *, fetch: bool):
    """Run ``sql`` on Django's connection (same transaction) with the driver's server-side binding.

    Errors come out as Django's (``OperationalError`` for a lost connection), as from any ORM query.
    """
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall() if fetch else []


def insert_rows(model, rows: list[dict], *, conflict: list[str] | None = None, update: str = "",
                returning: str = "") -> list[tuple]:
    """INSERT the rows (dicts by attname, all with the same keys; other columns take the model's defaults).

    ``conflict``: ON CONFLICT (these columns; ``[]``: any unique key) DO NOTHING, so a row whose
    unique key exists already is simply not written; with ``returning`` (e.g. ``"id, enrolment_id"``)
    the caller learns which rows were. ``update`` is a ``DO UPDATE SET`` clause as for
    ``insert_on_conflict`` (then no two rows may share a key). PostgreSQL writes all rows with
    one statement; other databases (the demo's SQLite) one INSERT per row.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        return _insert_rows_portable(model, rows, conflict=conflict, update=update, returning=returning)
    given = list(rows[0])
    names, values, params = [], [], []
    for name, (field, sql_type) in _columns(model).items():
        if field.primary_key:
            continue
        names.append(connection.ops.quote_name(field.column))
        if name in rows[0]:
            values.append(f"r.{name}")
        else:  # the model's default, the same for every row
            default = field.get_default() if field.has_default() else None
            values.append(f"%s::{sql_type}")
            params.append(json.dumps(default, cls=_RowEncoder) if field.get_internal_type() == "JSONField" else default)
    params.append(json.dumps(rows, cls=_RowEncoder))
    sql = (f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(names)})"
           f" SELECT {', '.join(values)} FROM {_recordset(model, given)}") + _on_conflict(model, conflict, update)
    if returning:
        sql += f" RETURNING {returning}"
    return _raw_execute(sql, params, fetch=bool(returning))


def _on_conflict(model, conflict, update) -> str:
    if conflict is None:
        return ""
    target = f" ({', '.join(conflict)})" if conflict else ""
    if update:
        return f" ON CONFLICT{target} DO UPDATE SET {update.format(table=connection.ops.quote_name(model._meta.db_table))}"
    return f" ON CONFLICT{target} DO NOTHING"


def _insert_rows_portable(model, rows, *, conflict, update, returning):
    """The same, one INSERT per row (SQLite 3.35+, used by the demo)."""
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    table = connection.ops.quote_name(model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})" + _on_conflict(
        model, conflict, update)
    if returning:
        sql += f" RETURNING {returning}"
    results = []
    with connection.cursor() as cursor:
        for row in rows:
            values = []
            for field in fields:
                value = row.get(field.attname, field.get_default() if field.has_default() else None)
                values.append(json.dumps(value, cls=_RowEncoder) if field.get_internal_type() == "JSONField"
                              else field.get_db_prep_save(value, connection))
            cursor.execute(sql, values)
            if returning:
                results += cursor.fetchall()
    return results


def update_rows(model, ids: list[int], values: dict[str, list], *, only: list[set] | None = None):
    """UPDATE each row ``ids[i]`` with ``values[attname][i]`` in one statement (``UPDATE … FROM`` the rows).

    ``only[i]``: the names row ``i`` writes; its other columns keep their stored value (rows that
    changed different fields, still one statement).
    """
    if not ids:
        return
    if connection.vendor != "postgresql":
        for index, pk in enumerate(ids):
            model.objects.filter(pk=pk).update(**{name: column[index] for name, column in values.items()
                                                  if only is None or name in only[index]})
        return
    names = list(values)
    rows = [dict(zip(["id", *names], row)) for row in zip(ids, *values.values())]
    table = connection.ops.quote_name(model._meta.db_table)
    recordset = _recordset(model, ["id", *names])
    quoted = {name: connection.ops.quote_name(_columns(model)[name][0].column) for name in names}
    if only is None:
        sets = ", ".join(f"{quoted[name]} = r.{name}" for name in names)
    else:
        for row, written in zip(rows, only):
            row["only_"] = sorted(written)
        recordset = recordset[:-1] + ", only_ text[])"
        sets = ", ".join(f"{quoted[name]} = CASE WHEN '{name}' = ANY(r.only_) THEN r.{name} ELSE {table}.{quoted[name]} END"
                         for name in names)
    _raw_execute(f"UPDATE {table} SET {sets} FROM {recordset} WHERE {table}.id = r.id",
                 [json.dumps(rows, cls=_RowEncoder)], fetch=False)
