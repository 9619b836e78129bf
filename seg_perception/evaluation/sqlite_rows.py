"""Rows of a damaged rosbag2 sqlite3 file: read-only, row by row, up to the first unreadable one.

The rosbag2 schema: ``topics(id, name, type, serialization_format, ...)``,
``messages(id, topic_id, timestamp, data)`` and, from metadata version 4 on,
``message_definitions(topic_type, encoding, encoded_message_definition, ...)``. Rows are
read in ``id`` order (the recorder's write order), never through an index.

SQLite reads the bytes past the end of a cut file as zeros, which would hand out rows
with zeroed image data. The file is therefore opened through ``apsw`` (the SQLite
binding ``rosbags`` uses) with a VFS whose short reads are I/O errors: the first row
that touches a missing page ends the reading.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

SQLITE_MAGIC = b"SQLite format 3\x00"
HEADER_BYTES = 100


class SqliteRowsError(ValueError):
    """Nothing of the file is readable; the message says why."""


@cache
def _strict_vfs() -> Any:
    """The VFS that refuses short reads, registered once (the cache keeps it alive: apsw drops a freed VFS)."""
    import apsw

    class StrictFile(apsw.VFSFile):
        def xRead(self, amount: int, offset: int) -> bytes:
            data = super().xRead(amount, offset)
            if len(data) < amount:
                raise apsw.IOError(f"the file ends at byte {offset + len(data)}; a page there is missing")
            return data

    class StrictVFS(apsw.VFS):
        def __init__(self, name: str) -> None:
            super().__init__(name, base="")
            self.name = name

        def xOpen(self, name: Any, flags: list[int]) -> apsw.VFSFile:
            return StrictFile("", name, flags)

    return StrictVFS("seg_perception_strict")


def _errors() -> tuple[type[BaseException], ...]:
    import apsw

    return (apsw.Error,)


@dataclass(frozen=True)
class SqliteTopic:
    id: int
    topic: str
    msgtype: str


@dataclass(frozen=True)
class RowsEnd:
    """Where reading stopped: ``complete`` after the last row, else at the first unreadable one."""

    complete: bool
    last_id: int | None
    file_bytes: int
    reason: str


class SqliteRows:
    """Read-only access to one ``.db3`` file; iterate to get ``(topic, timestamp_ns, data)`` per row.

    Raises SqliteRowsError when the file is no SQLite database, is cut inside its
    header, or its topics table is unreadable. ``end`` is set when an iteration ends.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file_bytes = self.path.stat().st_size
        with open(self.path, "rb") as f:
            head = f.read(HEADER_BYTES)
        if not head.startswith(SQLITE_MAGIC[: len(head)]) or not head:
            raise SqliteRowsError("not an SQLite database (no SQLite header)")
        if len(head) < HEADER_BYTES:
            raise SqliteRowsError(f"the file is cut inside its {HEADER_BYTES}-byte SQLite header ({len(head)} bytes)")
        import apsw

        try:
            self._db = apsw.Connection(
                str(self.path.resolve()), flags=apsw.SQLITE_OPEN_READONLY, vfs=_strict_vfs().name
            )
        except apsw.Error as err:
            raise SqliteRowsError(f"SQLite cannot open it: {err}") from err
        try:
            # A cut file has fewer pages than its header says; SQLite refuses it as corrupt unless
            # writable_schema is on (then it uses the pages there are). The connection stays read-only.
            self._db.execute("PRAGMA writable_schema=ON")
            rows = self._db.execute("SELECT id, name, type FROM topics").fetchall()
        except apsw.Error as err:
            self._db.close()
            raise SqliteRowsError(f"its topics table is unreadable ({err}): no message can be attributed") from err
        self.topics = {int(i): SqliteTopic(int(i), str(n), str(t)) for i, n, t in rows}
        self.end: RowsEnd | None = None

    def definitions(self) -> list[tuple[str, str, str]]:
        """(type, encoding, definition) rows of ``message_definitions``; [] when absent or unreadable."""
        try:
            rows = self._db.execute(
                "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"
            ).fetchall()
        except _errors():
            return []
        return [(str(t), str(e), str(d)) for t, e, d in rows]

    def __iter__(self) -> Iterator[tuple[SqliteTopic, int, bytes]]:
        last: int | None = None
        cur: Any = None
        while True:
            try:
                if cur is None:
                    cur = self._db.execute("SELECT id, topic_id, timestamp, data FROM messages ORDER BY id")
                row = next(cur, None)
            except _errors() as err:
                where = "before the first row" if last is None else f"after row id {last}"
                self.end = RowsEnd(False, last, self.file_bytes, f"messages unreadable {where}: {err}")
                return
            if row is None:
                self.end = RowsEnd(True, last, self.file_bytes, "last row")
                return
            last = int(row[0])
            topic = self.topics.get(int(row[1]))
            if topic is not None:
                yield topic, int(row[2]), bytes(row[3])

    def close(self) -> None:
        self._db.close()
