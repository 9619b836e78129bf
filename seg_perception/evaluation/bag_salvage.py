"""Truncated ROS 2 bags: read every intact message and say what was lost, as ``mcap recover`` would.

``salvage_bag`` is what ``BagReader`` falls back to when ``rosbags`` refuses a bag. It
walks the MCAP records (``mcap_walk``) or the sqlite3 rows (``sqlite_rows``) from the
start and stops at the first damaged one. Lost messages are counted against the
``metadata.yaml`` message counts when the bag folder has one; without it the count is
unknown (None). A bag that the walk reads to its end is not truncated: the original
error stands.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from seg_perception.errors import BagError
from seg_perception.evaluation.mcap_walk import McapWalk, McapWalkError
from seg_perception.evaluation.sqlite_rows import SqliteRows, SqliteRowsError

DATA_SUFFIXES = (".mcap", ".db3")


@dataclass
class BagDamage:
    """What a damaged bag lost; ``to_dict`` goes into the JSON report, ``describe`` into the warning."""

    file: str
    reason: str
    where: str = ""
    file_bytes: int | None = None
    #: byte offset of the first damaged MCAP record (None for sqlite3)
    damaged_at_byte: int | None = None
    messages_read: int | None = None
    #: messages in metadata.yaml minus those read; None when the bag has no metadata.yaml
    messages_lost: int | None = None
    lost_by_topic: dict[str, int] = field(default_factory=dict)
    #: receive time (ns) of the newest intact message
    last_intact_ns: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        lost = "an unknown number of messages lost (no metadata.yaml to count against)"
        if self.messages_lost is not None:
            per = ", ".join(f"{t}: {n}" for t, n in sorted(self.lost_by_topic.items()) if n)
            lost = f"{self.messages_lost} message(s) lost" + (f" ({per})" if per else "")
        last = ""
        if self.last_intact_ns is not None:
            ns = self.last_intact_ns
            last = f", the last intact one at {ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
        read = "" if self.messages_read is None else f"read {self.messages_read} intact message(s){last}; "
        return f"damaged bag {self.file}: {self.where or self.reason}; {read}{lost}"


@dataclass
class _Topic:
    msgtype: str
    msgcount: int


@dataclass(frozen=True)
class _Connection:
    topic: str
    msgtype: str


def _metadata(folder: Path) -> dict[str, Any]:
    """``rosbag2_bagfile_information`` of ``folder/metadata.yaml``; {} when absent or unreadable."""
    try:
        doc = yaml.safe_load((folder / "metadata.yaml").read_text())
    except (OSError, yaml.YAMLError):
        return {}
    info = doc.get("rosbag2_bagfile_information") if isinstance(doc, dict) else None
    return info if isinstance(info, dict) else {}


def _expected_counts(meta: dict[str, Any]) -> dict[str, int] | None:
    try:
        return {str(t["topic_metadata"]["name"]): int(t["message_count"]) for t in meta["topics_with_message_count"]}
    except (KeyError, TypeError, ValueError):
        return None


def _data_files(path: Path, meta: dict[str, Any]) -> list[Path]:
    if path.is_file():
        return [path]
    listed = [path / str(p) for p in meta.get("relative_file_paths") or [] if isinstance(p, str)]
    files = [p for p in listed if p.is_file()] or sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES)
    if not files:
        raise BagError(f"bag folder {path} holds no .mcap or .db3 file")
    return files


def _register_definitions(typestore: Any, definitions: list[tuple[str, str, str]]) -> None:
    """Add the bag's own ``ros2msg`` definitions to ``typestore`` (types it already knows are kept)."""
    from rosbags.typesys import get_types_from_msg

    for msgtype, encoding, text in definitions:
        if encoding != "ros2msg" or not text or msgtype in typestore.fielddefs:
            continue
        try:
            typestore.register(get_types_from_msg(text, msgtype))
        except Exception:  # noqa: BLE001 - an unparsable definition leaves the type undecodable, not the bag
            continue


class SalvagedBag:
    """The part of ``rosbags.highlevel.AnyReader``'s interface ``BagReader`` uses, over intact records."""

    is2 = True

    def __init__(self, files: list[Path], typestore: Any) -> None:
        self.files = files
        self.typestore = typestore
        self.topics: dict[str, _Topic] = {}
        self.damage: BagDamage | None = None
        #: receive time (ns) of the newest intact message
        self.last_ns: int | None = None

    def _walk(self, file: Path) -> Iterator[tuple[str, str, int, bytes]]:
        """(topic, type, log_ns, raw) of ``file``; sets ``damage`` where it stops early."""
        walk: Any = McapWalk(file) if file.suffix == ".mcap" else SqliteRows(file)
        try:
            for item, log_ns, raw in walk:
                yield item.topic, item.msgtype, log_ns, raw
        finally:
            if isinstance(walk, SqliteRows):
                walk.close()
        known = walk.channels.values() if isinstance(walk, McapWalk) else walk.topics.values()
        for item in known:  # topics without an intact message are listed too, with count 0
            self.topics.setdefault(item.topic, _Topic(item.msgtype, 0))
        end = walk.end
        if end is not None and not end.complete and self.damage is None:
            at = getattr(end, "offset", None)
            where = f"{end.reason} (the file has {end.file_bytes} bytes)"
            self.damage = BagDamage(str(file), "", where=where, file_bytes=end.file_bytes, damaged_at_byte=at)

    def scan(self) -> None:
        """First pass: topics with readable counts, type definitions and the damage."""
        counts: Counter[str] = Counter()
        for file in self.files:
            if file.suffix == ".db3":
                rows = SqliteRows(file)
                _register_definitions(self.typestore, rows.definitions())
                rows.close()
            for topic, _, log_ns, _ in self._walk(file):
                counts[topic] += 1
                self.last_ns = log_ns if self.last_ns is None else max(self.last_ns, log_ns)
        for topic, n in counts.items():
            self.topics[topic].msgcount = n

    @property
    def connections(self) -> list[_Connection]:
        return [_Connection(t, info.msgtype) for t, info in self.topics.items()]

    def messages(self, connections: Collection[_Connection]) -> Iterator[tuple[_Connection, int, bytes]]:
        """Intact messages of ``connections`` in file order."""
        wanted = {c.topic: c for c in connections}
        for file in self.files:
            for topic, _, log_ns, raw in self._walk(file):
                if topic in wanted:
                    yield wanted[topic], log_ns, raw

    def deserialize(self, raw: bytes | memoryview, msgtype: str) -> Any:
        return self.typestore.deserialize_cdr(raw, msgtype)

    def close(self) -> None:
        """Nothing stays open between walks."""


def salvage_bag(path: Path, refusal: str, typestore: Any) -> SalvagedBag:
    """A reader over the intact records of the ROS 2 bag at ``path`` that ``rosbags`` refused.

    ``refusal`` is the refusing error's message. Raises BagError (saying why) when the bag
    is not a ROS 2 MCAP/sqlite3 bag, nothing of it is readable, or it is not truncated.
    """
    meta = _metadata(path) if path.is_dir() else {}
    try:
        files = _data_files(path, meta)
    except (BagError, OSError) as err:
        raise BagError(f"{refusal}; {err}") from err
    if any(f.suffix not in DATA_SUFFIXES for f in files):
        raise BagError(refusal)
    bag = SalvagedBag(files, typestore)
    try:
        bag.scan()
    except (McapWalkError, SqliteRowsError, OSError) as err:
        raise BagError(f"{refusal}; nothing is readable: {err}") from err
    if bag.damage is None:
        raise BagError(refusal)  # read to its end: not a truncation, the refusal stands
    read = sum(t.msgcount for t in bag.topics.values())
    if read == 0:
        raise BagError(f"{refusal}; no message is intact: {bag.damage.where}")
    damage = bag.damage
    damage.reason = refusal
    damage.messages_read = read
    damage.last_intact_ns = bag.last_ns
    expected = _expected_counts(meta)
    if expected is not None:
        damage.lost_by_topic = {t: n - (bag.topics[t].msgcount if t in bag.topics else 0) for t, n in expected.items()}
        damage.messages_lost = max(sum(damage.lost_by_topic.values()), 0)
    return bag
