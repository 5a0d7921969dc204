"""The one SQL statement the ORM cannot write for us: INSERT … ON CONFLICT … RETURNING id.

Effectively-once rests on it: an event, a step execution or an idle timer is
written in a single statement whose unique key turns a repeat into nothing
(or into an update), and the caller learns whether it was new. PostgreSQL and
SQLite (3.35+) both speak this syntax.
"""

import functools

from django.db import InterfaceError, OperationalError, connection

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
