"""SQLite persistence of the sandbox state (``checkout-kit sandbox --state FILE``).

Each record is one row of the table ``records (kind, key, data)``, ``data`` being the
record as JSON (:mod:`checkout_kit.jsoncodec`: amounts keep their exact digits). After
a request, :meth:`Store.write` upserts the records that request changed, and only
those, in one SQLite transaction: its cost does not grow with the number of records
stored. On start, :meth:`Store.load` reads everything back through the records' own
constructors.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives the sandbox process being killed at any point (a write cut short is rolled
back, the ones before it stay); only a power failure could lose the last commits,
which is acceptable for a test gateway. One process uses a file at a time.
"""

from __future__ import annotations

import dataclasses
import enum
import sqlite3
import threading
import types
import typing
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import jsoncodec
from .rules.records import COLLECTIONS, SandboxState

__all__ = ["Store"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, "
    "data TEXT NOT NULL, PRIMARY KEY (kind, key))"
)
_UPSERT = (
    "INSERT INTO records (kind, key, data) VALUES (?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data"
)
_DELETE = "DELETE FROM records WHERE kind = ? AND key = ?"
#: Collections whose keys are integers (SQLite keeps every key as text).
_INT_KEYS = frozenset({"transactions", "deliveries"})


def _plain(record: Any) -> Any:
    """A record as JSON-ready data: dataclasses become objects, enums their values."""
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}
    if isinstance(record, enum.Enum):
        return record.value
    if isinstance(record, dict):
        return {key: _plain(value) for key, value in record.items()}
    if isinstance(record, list | tuple):
        return [_plain(value) for value in record]
    return record


def _typed(tp: Any, value: Any) -> Any:
    """``value`` read back from JSON as the declared type ``tp`` of its field."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        return _typed(inner[0], value) if len(inner) == 1 else value
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_typed(item, v) for v in value]
    if tp is Decimal:
        return Decimal(value)
    if tp is datetime:
        return datetime.fromisoformat(value)
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return _build(tp, value)
        if issubclass(tp, enum.Enum):
            return tp(value)
    return value  # str, int, bool, and JSON values kept as they came (Any, dict)


def _build(cls: type[Any], data: dict[str, Any]) -> Any:
    """An instance of the dataclass ``cls`` made by its constructor from stored data
    (fields this version no longer has are left out)."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{name: _typed(hints[name], value)
                  for name, value in data.items() if name in names})


class Store:
    """The SQLite file behind one sandbox."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # One connection, used under its own lock by whichever thread writes.
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(_SCHEMA)

    def load(self) -> SandboxState:
        """The state kept in the file (an empty state for a new file)."""
        state = SandboxState()
        with self._lock:
            rows = self._db.execute("SELECT kind, key, data FROM records").fetchall()
        for kind, key, data in rows:
            value = jsoncodec.loads(data)
            if kind == "meta":
                state.meta.update(value)
            elif kind in COLLECTIONS:
                stored_key = int(key) if kind in _INT_KEYS else key
                getattr(state, kind)[stored_key] = _build(COLLECTIONS[kind], value)
        return state

    def write(self, state: SandboxState) -> int:
        """Write the records changed since the last write, in one transaction; returns
        how many rows were written or deleted. If the write fails, nothing of it is
        kept in the file and the changes stay noted for the next write."""
        changes = state.take_changes()
        if not changes:
            return 0
        try:
            rows: list[tuple[str, str, str]] = []
            gone: list[tuple[str, str]] = []
            for kind, key in changes:
                record = state.meta if kind == "meta" else getattr(state, kind).get(key)
                if record is None:
                    gone.append((kind, str(key)))
                else:
                    rows.append((kind, str(key), jsoncodec.dumps(_plain(record))))
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    self._db.executemany(_UPSERT, rows)
                    self._db.executemany(_DELETE, gone)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
        except BaseException:
            state.restore_changes(changes)
            raise
        return len(changes)

    def write_all(self, state: SandboxState) -> int:
        """Write every record (a new file for an existing state)."""
        for kind in COLLECTIONS:
            state.changed.update((kind, key) for key in getattr(state, kind))
        state.changed.add(("meta", "meta"))
        return self.write(state)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
