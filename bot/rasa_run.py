"""``python -m bot.rasa_run run ...``: the ``rasa`` command with three speed fixes (rasa venv only).

Profiling the benchmark (``python -m bot.bench``, py-spy on the rasa process) showed that rasa
3.6 spent about 28 % of its time in ``RemoteAction._validate_action_result``: for every custom
action call it runs ``jsonschema.validate(result, schema)``, and ``jsonschema.validate`` first
checks the *schema itself* against the JSON Schema 2020-12 meta-schema — about 40 ms per call
with jsonschema 4.17 (``validators.validate`` calls ``cls.check_schema(schema)`` every time; see
https://python-jsonschema.readthedocs.io/en/stable/validate/ "validate() … first verifies that
the provided schema is valid"). The schema (``RemoteAction.action_response_format_spec()``) is a
constant, so here it is checked once and one validator is reused: the same action responses are
accepted and rejected, with the same ``ValidationError`` message, at about 1-2 ms per call.

Second fix: each message makes rasa commit to the SQLite tracker store, and with SQLite's
defaults (rollback journal, ``synchronous=FULL``) every commit waits for fsync — 11-12 % of rasa's
time in the same profile. SQLite connections opened by rasa's SQLAlchemy engine get
``journal_mode=WAL`` and ``synchronous=NORMAL``: in WAL mode this is still safe when a process
crashes or is killed (committed transactions survive; only an OS crash / power cut may lose the
last ones, never corrupting the file) — https://www.sqlite.org/pragma.html#pragma_synchronous and
https://www.sqlite.org/wal.html. PostgreSQL tracker stores are not touched.

Third fix: SQLAlchemy 1.4 gives file-based SQLite engines a ``NullPool``, so rasa opened and closed
a SQLite connection for every tracker read and write; closing the last connection of a WAL
database also checkpoints and deletes the WAL file. That was 7-8 % of rasa's CPU in the profile
(``_close_connection`` 5.2 %, ``connect`` 2.3 %). Rasa's ``create_engine_kwargs`` (kwargs for the
tracker store's ``create_engine``) returns nothing for SQLite; here it returns a ``QueuePool`` (the
default of SQLAlchemy 2.0 for SQLite files, with ``check_same_thread=False`` as its docs
prescribe: https://docs.sqlalchemy.org/en/14/dialects/sqlite.html#threading-pooling-behavior),
so connections are reused. Other processes (another replica, ``python -m bot purge``) still see
every commit: WAL readers and writers in separate processes coordinate through the WAL index.

Everything else is ``rasa``'s own command line (``rasa.__main__.main``), unchanged.
"""

from __future__ import annotations

import sys
from typing import Any, Dict, Text


def install_cached_action_validation() -> None:
    """Replace ``RemoteAction._validate_action_result`` by one using a validator built once.

    Raises:
        jsonschema.SchemaError: never in practice (rasa's constant schema is valid).
    """
    from jsonschema import ValidationError, validators
    from rasa.core.actions import action
    from rasa.shared.constants import DOCS_BASE_URL

    schema = action.RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)  # once, instead of once per action call
    validator = validator_class(schema)

    def _validate_action_result(self: Any, result: Dict[Text, Any]) -> bool:
        """As rasa 3.6: True when valid, else ValidationError with rasa's message suffix."""
        try:
            validator.validate(result)
            return True
        except ValidationError as e:
            e.message += (
                f". Failed to validate Action server response from API, "
                f"make sure your response from the Action endpoint is valid. "
                f"For more information about the format visit "
                f"{DOCS_BASE_URL}/custom-actions"
            )
            raise e

    action.RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


def install_sqlite_wal() -> None:
    """Make every SQLite connection of SQLAlchemy engines use WAL and ``synchronous=NORMAL``."""
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()


def install_sqlite_pool() -> None:
    """Give the SQL tracker store's SQLite engine a QueuePool instead of SQLAlchemy 1.4's NullPool.

    Only file-based ``sqlite`` URLs are changed; PostgreSQL keeps rasa's own pool settings.
    """
    from rasa.core import tracker_store
    from sqlalchemy.engine.url import make_url
    from sqlalchemy.pool import QueuePool

    rasa_kwargs = tracker_store.create_engine_kwargs

    def create_engine_kwargs(url: Any) -> Dict[Text, Any]:
        parsed = make_url(url) if isinstance(url, str) else url
        if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
            return {"poolclass": QueuePool, "pool_size": 5, "max_overflow": 10,
                    "connect_args": {"check_same_thread": False}}
        return rasa_kwargs(url)

    tracker_store.create_engine_kwargs = create_engine_kwargs  # type: ignore[assignment]


def rasa_cli() -> None:
    """Run rasa's own CLI with this process's arguments, as the ``rasa`` command would."""
    from rasa.__main__ import main as rasa_main

    sys.argv[0] = "rasa"
    rasa_main()


def main() -> None:
    """Install the fixes, then run rasa's CLI with the given arguments (e.g. ``run --enable-api``)."""
    install_cached_action_validation()
    install_sqlite_wal()
    install_sqlite_pool()
    rasa_cli()


if __name__ == "__main__":
    main()
