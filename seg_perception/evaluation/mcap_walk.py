"""A tolerant MCAP record walker: every intact message from the start, no summary or footer needed.

An MCAP file is the 8-byte magic, then records ``opcode u8, length u64 LE, body``.
Schema (0x03) and Channel (0x04) records precede the Message (0x05) records that use
them; a Chunk (0x06) holds such records, uncompressed or lz4/zstd compressed. A file
whose writer died ends inside a record: the walk stops at the first incomplete record
and ``McapWalk.end`` says where. A cut chunk still gives the records before the cut
(decompressed as far as the data goes).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zlib import crc32

MAGIC = b"\x89MCAP0\r\n"
OP_FOOTER = 0x02
OP_SCHEMA = 0x03
OP_CHANNEL = 0x04
OP_MESSAGE = 0x05
OP_CHUNK = 0x06
OP_DATA_END = 0x0F
_RECORD = struct.Struct("<BQ")
_CHUNK_HEAD = struct.Struct("<QQQI")  # start, end, uncompressed size, uncompressed crc
_MESSAGE_HEAD = struct.Struct("<HIQQ")  # channel, sequence, log time, publish time


class McapWalkError(ValueError):
    """The file is no MCAP file, or is cut before its first record."""


@dataclass(frozen=True)
class McapChannel:
    """A Channel record with its Schema's name (the ROS message type) and definition."""

    id: int
    topic: str
    msgtype: str
    encoding: str
    schema_encoding: str
    schema_data: str


@dataclass(frozen=True)
class WalkEnd:
    """Where a walk stopped: ``complete`` at DataEnd/Footer, else at the first damaged record."""

    complete: bool
    offset: int
    file_bytes: int
    reason: str


def _string(buf: bytes, off: int) -> tuple[str, int]:
    (n,) = struct.unpack_from("<I", buf, off)
    end = off + 4 + n
    if end > len(buf):
        raise struct.error("string runs past its record")
    return buf[off + 4 : end].decode("utf-8", "replace"), end


def _decompress(data: bytes, compression: str, partial: bool) -> bytes:
    """Chunk records; for a cut chunk (``partial``) as much as decodes, possibly b""."""
    if compression == "":
        return data
    try:
        if compression == "zstd":
            try:
                from compression import zstd  # type: ignore[import-not-found]
            except ImportError:
                from backports import zstd  # type: ignore[import-not-found,no-redef]
            return zstd.ZstdDecompressor().decompress(data) if partial else zstd.decompress(data)
        if compression == "lz4":
            import lz4.frame

            return lz4.frame.LZ4FrameDecompressor().decompress(data) if partial else lz4.frame.decompress(data)
    except Exception:
        if partial:
            return b""
        raise
    raise McapWalkError(f"unsupported chunk compression {compression!r}")


class McapWalk:
    """One sequential pass over ``path``; iterate to get ``(channel, log_time_ns, data)`` of every message.

    ``channels`` fills as Channel records are met; ``end`` is set when the iteration ends.
    Raises McapWalkError when the file is not MCAP or is cut inside its magic.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.channels: dict[int, McapChannel] = {}
        self._schemas: dict[int, tuple[str, str, str]] = {}
        self.end: WalkEnd | None = None

    def __iter__(self) -> Iterator[tuple[McapChannel, int, bytes]]:
        with open(self.path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            magic = f.read(len(MAGIC))
            if magic != MAGIC:
                if MAGIC.startswith(magic):
                    raise McapWalkError(f"the file is cut inside its {len(MAGIC)}-byte magic ({size} bytes)")
                raise McapWalkError("not an MCAP file (no MCAP magic)")
            pos = len(MAGIC)
            while True:
                head = f.read(_RECORD.size)
                if len(head) < _RECORD.size:
                    self._stop(False, pos, size, "the file ends" + (" inside a record header" if head else ""))
                    return
                op, length = _RECORD.unpack(head)
                body = f.read(min(length, max(size - pos - _RECORD.size, 0)))
                cut = len(body) < length
                if op in (OP_DATA_END, OP_FOOTER) and not cut:
                    self._stop(True, pos, size, "data end")
                    return
                if op == OP_CHUNK:
                    inner_cut = yield from self._chunk(body, cut)
                    if inner_cut:
                        self._stop(False, pos, size, f"chunk at byte {pos} is {inner_cut}")
                        return
                elif cut:
                    self._stop(
                        False, pos, size, f"record 0x{op:02x} at byte {pos} is cut ({len(body)} of {length} bytes)"
                    )
                    return
                else:
                    yield from self._record(op, body)
                pos += _RECORD.size + length

    def _stop(self, complete: bool, offset: int, size: int, reason: str) -> None:
        self.end = WalkEnd(complete, offset, size, reason)

    def _chunk(self, body: bytes, cut: bool) -> Iterator[tuple[McapChannel, int, bytes]]:
        """Messages of one chunk; returns why it is incomplete ("" when whole)."""
        try:
            _, _, usize, crc = _CHUNK_HEAD.unpack_from(body, 0)
            compression, off = _string(body, _CHUNK_HEAD.size)
            (rsize,) = struct.unpack_from("<Q", body, off)
        except struct.error:
            return "cut inside its header"
        data = body[off + 8 : off + 8 + rsize]
        partial = cut or len(data) < rsize
        try:
            records = _decompress(data, compression, partial)
        except Exception:  # noqa: BLE001 - an undecodable whole chunk is damage like a cut one
            return f"not decodable ({compression or 'uncompressed'})"
        if not partial and crc and crc32(records) != crc:
            return "corrupt (CRC mismatch)"
        pos = 0
        while pos + _RECORD.size <= len(records):
            op, length = _RECORD.unpack_from(records, pos)
            start = pos + _RECORD.size
            if start + length > len(records):
                break
            yield from self._record(op, records[start : start + length])
            pos = start + length
        if partial or pos < len(records) or (usize and len(records) != usize):
            return f"cut ({pos} of {usize} uncompressed bytes intact)"
        return ""

    def _record(self, op: int, body: bytes) -> Iterator[tuple[McapChannel, int, bytes]]:
        try:
            if op == OP_MESSAGE:
                cid, _, log_time, _ = _MESSAGE_HEAD.unpack_from(body, 0)
                channel = self.channels.get(cid)
                if channel is not None:
                    yield channel, int(log_time), body[_MESSAGE_HEAD.size :]
            elif op == OP_SCHEMA:
                (sid,) = struct.unpack_from("<H", body, 0)
                name, off = _string(body, 2)
                encoding, off = _string(body, off)
                (n,) = struct.unpack_from("<I", body, off)
                self._schemas[sid] = (name, encoding, body[off + 4 : off + 4 + n].decode("utf-8", "replace"))
            elif op == OP_CHANNEL:
                cid, sid = struct.unpack_from("<HH", body, 0)
                topic, off = _string(body, 4)
                encoding, _ = _string(body, off)
                name, schema_encoding, data = self._schemas.get(sid, ("", "", ""))
                self.channels[cid] = McapChannel(cid, topic, name, encoding, schema_encoding, data)
        except struct.error:
            return  # a malformed record inside an intact frame: skipped, as MCAP readers do
