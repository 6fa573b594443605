"""SQLite persistence of the sandbox state (``checkout-kit sandbox --state FILE``).

Each record is one row of the table ``records (kind, key, data)``, ``data`` being the
record as JSON (:mod:`checkout_kit.jsoncodec`: amounts keep their exact digits). At the
end of each use of the state lock, the records that changed, and only those, are
upserted in one SQLite transaction: its cost does not grow with the number of records
stored. On start, :meth:`Store.load` reads everything back through the records' own
constructors.

The database runs in WAL mode with ``synchronous=NORMAL``: a committed transaction
survives the sandbox process being killed at any point (a write cut short is rolled
back, the ones before it stay); only a power failure could lose the last commits,
which is acceptable for a test gateway. Several processes may share a file: each
:meth:`Store.begin` takes the file's write lock and reads what the others wrote since
(:class:`SharedLock` makes the sandbox's lock do that).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sqlite3
import threading
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from .. import jsoncodec
from .rules.records import COLLECTIONS, SandboxState

__all__ = ["SharedLock", "Store"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS records (kind TEXT NOT NULL, key TEXT NOT NULL, "
    "data TEXT NOT NULL, version INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (kind, key))"
)
_INDEX = "CREATE INDEX IF NOT EXISTS records_version ON records (version)"
_UPSERT = (
    "INSERT INTO records (kind, key, data, version) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET data = excluded.data, version = excluded.version"
)
#: A removed record stays as a row with empty ``data`` (not JSON), so that the other
#: processes sharing the file learn of the removal as they learn of any change.
_GONE = ""
#: Collections whose keys are integers (SQLite keeps every key as text).
_INT_KEYS = frozenset({"transactions", "deliveries"})
#: Seconds a process waits for another to finish its write (they are short: the state
#: lock is never held while the sandbox waits on the network).
_BUSY_TIMEOUT = 30.0


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
    """The SQLite file behind one sandbox, shared by every process that opens it.

    Each row carries the ``version`` of the write that last changed it. A process
    remembers the highest version it has seen; :meth:`begin` takes the file's write
    lock and reads only the rows written since, so keeping up costs what the others
    changed, not the size of the state.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._db = self._open()
        self._pid = os.getpid()
        #: The highest version read or written by this process (-1: nothing yet).
        self._seen = -1
        #: Changes written in the open transaction, noted again if it is rolled back.
        self._pending: set[tuple[str, Any]] = set()
        #: SQLite's data_version when :meth:`changed_elsewhere` last asked.
        self._data_version = -1

    def _open(self) -> sqlite3.Connection:
        # One connection, used by one thread at a time (the state lock's holder).
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=_BUSY_TIMEOUT)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("BEGIN IMMEDIATE")  # two processes opening an old file: one upgrades it
        try:
            db.execute(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(records)")}
            if "version" not in columns:  # a file written before versions: all rows are 0
                db.execute("ALTER TABLE records ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
            db.execute(_INDEX)
        except BaseException:
            db.execute("ROLLBACK")
            db.close()
            raise
        db.execute("COMMIT")
        return db

    def load(self) -> SandboxState:
        """The state kept in the file (an empty state for a new file)."""
        state = SandboxState()
        with self.transaction(state):
            pass
        return state

    @contextmanager
    def transaction(self, state: SandboxState) -> Iterator[None]:
        """Hold the file's write lock for the ``with`` block: ``state`` is first
        brought up to date with what other processes wrote, and what changed in it is
        written at the end, in the same SQLite transaction (even when the block
        raised: the changes are made in memory already)."""
        self.begin(state)
        try:
            yield
        finally:
            self.end(state)

    def begin(self, state: SandboxState) -> None:
        """Start :meth:`transaction` (waits while another process writes)."""
        self._lock.acquire()
        try:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                self._refresh(state)
            except BaseException:
                self._rollback()
                raise
        except BaseException:
            self._lock.release()
            raise

    def end(self, state: SandboxState) -> int:
        """Finish :meth:`transaction`: write and commit; returns how many records the
        transaction wrote. If the write or the commit fails, nothing of the transaction
        is kept in the file, the file's write lock is let go, and its changes stay
        noted for the next one."""
        try:
            try:
                self.flush(state)
                self._db.execute("COMMIT")
            except BaseException:
                # Noted again first: a failing ROLLBACK must not lose them.
                state.restore_changes(self._pending)
                self._rollback()
                raise
            written = len(self._pending)
            if written:
                self._seen = self._version()
            return written
        finally:
            self._pending = set()
            self._lock.release()

    def changed_elsewhere(self) -> bool:
        """Whether another connection committed to the file since this one last
        looked (SQLite's ``data_version``): a read needs no write lock when not."""
        with self._lock:
            version = int(self._connection().execute("PRAGMA data_version").fetchone()[0])
            changed, self._data_version = version != self._data_version, version
            return changed

    def _rollback(self) -> None:
        # SQLite may have rolled the transaction back itself (a full disk, an I/O
        # error): a second ROLLBACK would raise over the first error.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _connection(self) -> sqlite3.Connection:
        """The connection, opened again in a child process: a connection (and its
        locks) must not cross ``fork()`` (``gunicorn --preload``)."""
        if self._pid != os.getpid():
            self._db = self._open()
            self._pid = os.getpid()
        return self._db

    def flush(self, state: SandboxState) -> int:
        """Write the records changed since the last flush into the open transaction;
        returns how many rows were written."""
        changes = state.take_changes()
        if not changes:
            return 0
        version = self._version()
        try:
            rows: list[tuple[str, str, str, int]] = []
            for kind, key in changes:
                record = state.meta if kind == "meta" else getattr(state, kind).get(key)
                data = _GONE if record is None else jsoncodec.dumps(_plain(record))
                rows.append((kind, str(key), data, version))
            self._db.executemany(_UPSERT, rows)
        except BaseException:
            state.restore_changes(changes)
            raise
        self._pending |= changes
        return len(changes)

    def write(self, state: SandboxState) -> int:
        """Write the records changed since the last write, in one transaction; returns
        how many rows were written (see :meth:`end` for a failure)."""
        self.begin(state)
        return self.end(state)

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

    def _version(self) -> int:
        """The version of this transaction's writes: one past everything read, which is
        everything in the file since :meth:`begin` holds the write lock."""
        return max(self._seen, 0) + 1

    def _refresh(self, state: SandboxState) -> None:
        """Apply the rows other processes wrote since this one last looked. A changed
        record is updated in place, so that objects the rules hold stay current."""
        rows = self._db.execute("SELECT kind, key, data, version FROM records "
                                "WHERE version > ? ORDER BY version", (self._seen,)).fetchall()
        for kind, key, data, version in rows:
            _apply(state, kind, key, data)
            self._seen = max(self._seen, version)


def _apply(state: SandboxState, kind: str, key: str, data: str) -> None:
    """One stored row into ``state`` (rows of kinds this version does not know are
    left alone)."""
    if kind == "meta":
        if data != _GONE:
            state.meta.clear()
            state.meta.update(jsoncodec.loads(data))
        return
    if kind not in COLLECTIONS:
        return
    records: dict[Any, Any] = getattr(state, kind)
    stored_key: Any = int(key) if kind in _INT_KEYS else key
    if data == _GONE:
        records.pop(stored_key, None)
        return
    record = _build(COLLECTIONS[kind], jsoncodec.loads(data))
    held = records.get(stored_key)
    if type(held) is type(record):
        vars(held).update(vars(record))
    else:
        records[stored_key] = record


class SharedLock:
    """The sandbox's re-entrant state lock when the state is kept in a :class:`Store`.

    The outermost ``with`` in a thread also holds the file's write lock: the state is
    brought up to date with what other processes (the app's workers, the ``flask
    checkout`` commands) wrote, and what the block changed is written at its end. So
    every process serving one state file sees one sandbox, and a counter such as the
    next transaction id is taken by one process at a time.
    """

    def __init__(self, store: Store, state: SandboxState) -> None:
        self._store = store
        self._state = state
        self._lock = threading.RLock()
        #: How deep the holding thread is (only the holder reads or writes it).
        self._depth = 0

    def __enter__(self) -> bool:
        self._lock.acquire()
        if self._depth == 0:
            try:
                self._store.begin(self._state)
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1
        return True

    def __exit__(self, *exc_info: object) -> None:
        self._depth -= 1
        try:
            if self._depth == 0:
                self._store.end(self._state)
        finally:
            self._lock.release()
