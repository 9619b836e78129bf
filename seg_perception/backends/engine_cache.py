"""On-disk cache of serialized TensorRT engines, timing caches and INT8 calibration caches.

Plain Python (no TensorRT): the cache key (model hash, TensorRT version, GPU, precision,
input shape, calibration), the file layout, validation and the input shape / optimization
profile. Layout and reasoning: docs/backends.md.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seg_perception.backends.preprocess import round_up
from seg_perception.errors import ConfigError, ModelError

LOG = logging.getLogger(__name__)

#: Environment variable overriding the default cache folder.
CACHE_DIR_ENV = "SEG_PERCEPTION_ENGINE_CACHE"
#: Bump when the meaning of a cache entry changes, so old entries miss.
CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """Where engines are cached when ``engine_cache_dir`` is empty.

    ``$SEG_PERCEPTION_ENGINE_CACHE``, else ``$XDG_CACHE_HOME/seg_perception/engines``,
    else ``~/.cache/seg_perception/engines``.
    """
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "seg_perception" / "engines"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks (models can be hundreds of MB)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while block := f.read(chunk):
                h.update(block)
    except OSError as err:
        raise ModelError(f"cannot read {path}: {err.strerror or err}") from err
    return h.hexdigest()


def model_fingerprint(onnx_path: str | Path) -> str:
    """sha256 over an ONNX file and its external-data files, if any.

    Large ONNX models keep their weights beside the graph (``model.onnx.data``,
    ``model.onnx_data``, ...); new weights must change the key even when the graph file
    is byte-identical, so every sibling whose name starts with the model's file name
    is hashed too.
    """
    path = Path(onnx_path)
    h = hashlib.sha256(sha256_file(path).encode())
    siblings = sorted(p for p in path.parent.glob(glob_escape(path.name) + "?*") if p.is_file() and p != path)
    for p in siblings:
        h.update(p.name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[\]])", r"[\1]", name)


def slug(text: str, limit: int = 40) -> str:
    """File-name-safe lower-case form of ``text`` (GPU names contain spaces and slashes)."""
    s = re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()
    return s[:limit] or "x"


@dataclass(frozen=True)
class GpuInfo:
    """The CUDA device an engine is built for.

    Attributes:
        name: marketing name as CUDA reports it, e.g. "Orin" or "NVIDIA GeForce RTX 4090".
        compute_capability: (major, minor), e.g. (8, 7) for Orin, (8, 9) for Ada.
        index: CUDA device ordinal.
    """

    name: str
    compute_capability: tuple[int, int]
    index: int = 0

    @property
    def sm(self) -> str:
        return f"sm{self.compute_capability[0]}{self.compute_capability[1]}"


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized engine depends on. Equal keys = reusable engine.

    Attributes:
        model_sha256: ``model_fingerprint`` of the ONNX file.
        tensorrt_version: ``tensorrt.__version__``.
        gpu_name, compute_capability: the device (see GpuInfo).
        precision: "fp32", "fp16" or "int8".
        input_shape: NCHW input shape of the optimization profile (min = opt = max).
        calibration: fingerprint of the INT8 calibration data ("" unless int8).
        workspace_bytes: builder workspace limit (0 = TensorRT's default); it can change tactics.
    """

    model_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: tuple[int, int]
    precision: str
    input_shape: tuple[int, ...]
    calibration: str = ""
    workspace_bytes: int = 0
    format: int = CACHE_FORMAT

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["compute_capability"] = list(self.compute_capability)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EngineKey:
        """Inverse of ``as_dict``; raises ValueError/TypeError/KeyError on a malformed mapping."""
        return cls(
            model_sha256=str(d["model_sha256"]),
            tensorrt_version=str(d["tensorrt_version"]),
            gpu_name=str(d["gpu_name"]),
            compute_capability=tuple(int(v) for v in d["compute_capability"]),  # type: ignore[arg-type]
            precision=str(d["precision"]),
            input_shape=tuple(int(v) for v in d["input_shape"]),
            calibration=str(d.get("calibration", "")),
            workspace_bytes=int(d.get("workspace_bytes", 0)),
            format=int(d.get("format", 0)),
        )

    @property
    def digest(self) -> str:
        """20 hex digits of sha256 over the canonical JSON of the key."""
        blob = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:20]

    def differences(self, other: EngineKey) -> list[str]:
        """Human-readable list of the parts that differ, e.g. ["precision fp32 -> fp16"]."""
        out = []
        mine, theirs = self.as_dict(), other.as_dict()
        labels = {"model_sha256": "ONNX file", "calibration": "calibration data"}
        for k, v in mine.items():
            if theirs.get(k) != v:
                if k in labels:
                    out.append(f"{labels[k]} changed")
                else:
                    out.append(f"{k.replace('_', ' ')} {theirs.get(k)} -> {v}")
        return out


@dataclass
class CacheLookup:
    """Result of ``EngineCache.load``: the engine bytes, or None and why not."""

    data: bytes | None
    path: Path
    reason: str

    @property
    def hit(self) -> bool:
        return self.data is not None


@dataclass
class EngineCache:
    """A folder of cached engines (layout: docs/backends.md).

    An unwritable folder is not an error: engines are then built on every start and a
    warning says so once.
    """

    cache_dir: Path
    _warned_unwritable: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.cache_dir = Path(self.cache_dir).expanduser()
        if self.cache_dir.exists() and not self.cache_dir.is_dir():
            raise ConfigError(f"engine_cache_dir {self.cache_dir} exists and is not a folder")

    # -- engines ---------------------------------------------------------------
    def stem(self, key: EngineKey, model_name: str) -> str:
        shape = "x".join(str(v) for v in key.input_shape[2:]) or "scalar"
        return f"{slug(model_name, 32)}-{key.precision}-{shape}-{key.digest}"

    def engine_path(self, key: EngineKey, model_name: str) -> Path:
        return self.cache_dir / f"{self.stem(key, model_name)}.engine"

    def meta_path(self, key: EngineKey, model_name: str) -> Path:
        return self.cache_dir / f"{self.stem(key, model_name)}.json"

    def load(self, key: EngineKey, model_name: str) -> CacheLookup:
        """The cached engine for ``key``, validated against its JSON record.

        A missing entry is a plain miss. A record that is unreadable, belongs to another
        key, or whose engine file has the wrong size or checksum is corrupt: the entry is
        deleted, a warning logged, and the lookup misses (the caller rebuilds).
        """
        engine, meta = self.engine_path(key, model_name), self.meta_path(key, model_name)
        if not meta.exists() or not engine.exists():
            return CacheLookup(None, engine, self.explain_miss(key, model_name))
        try:
            record = json.loads(meta.read_text())
            cached_key = EngineKey.from_dict(record["key"])
            size, digest = int(record["engine_bytes"]), str(record["engine_sha256"])
        except (OSError, ValueError, TypeError, KeyError) as err:
            return self._corrupt(key, model_name, f"unreadable cache record {meta.name} ({err})")
        if cached_key != key:
            return self._corrupt(key, model_name, f"cache record {meta.name} belongs to another configuration")
        try:
            data = engine.read_bytes()
        except OSError as err:
            return self._corrupt(key, model_name, f"cannot read {engine.name} ({err.strerror or err})")
        if len(data) != size or hashlib.sha256(data).hexdigest() != digest:
            return self._corrupt(
                key, model_name, f"{engine.name} is truncated or modified ({len(data)} bytes, expected {size})"
            )
        return CacheLookup(data, engine, "cache hit")

    def explain_miss(self, key: EngineKey, model_name: str) -> str:
        """Why there is no engine for ``key``: names what changed since the newest cached engine of this model."""
        prefix = slug(model_name, 32) + "-"
        newest: tuple[float, EngineKey] | None = None
        if self.cache_dir.is_dir():
            for meta in self.cache_dir.glob(glob_escape(prefix) + "*.json"):
                try:
                    record = json.loads(meta.read_text())
                    other = EngineKey.from_dict(record["key"])
                    created = float(record.get("created", 0.0))
                except (OSError, ValueError, TypeError, KeyError):
                    continue
                if newest is None or created > newest[0]:
                    newest = (created, other)
        if newest is None:
            return f"no cached engine for {model_name}"
        diff = key.differences(newest[1])
        return f"no cached engine for this configuration ({'; '.join(diff) or 'new entry'})"

    def store(self, key: EngineKey, model_name: str, data: bytes, extra: dict[str, Any] | None = None) -> Path | None:
        """Write an engine and its record atomically; returns the engine path, or None if the folder is unwritable."""
        engine, meta = self.engine_path(key, model_name), self.meta_path(key, model_name)
        record = {
            "key": key.as_dict(),
            "model_name": model_name,
            "engine_bytes": len(data),
            "engine_sha256": hashlib.sha256(data).hexdigest(),
            "created": time.time(),
            **(extra or {}),
        }
        if not self._write(engine, data):
            return None
        # The record is the commit marker: written only once the engine is complete.
        if not self._write(meta, json.dumps(record, indent=2, sort_keys=True).encode()):
            return None
        return engine

    def discard(self, key: EngineKey, model_name: str) -> None:
        """Remove an entry (e.g. an engine TensorRT could not deserialize)."""
        for p in (self.meta_path(key, model_name), self.engine_path(key, model_name)):
            try:
                p.unlink(missing_ok=True)
            except OSError as err:
                LOG.warning("cannot remove stale cache file %s: %s", p, err.strerror or err)

    def _corrupt(self, key: EngineKey, model_name: str, why: str) -> CacheLookup:
        LOG.warning("engine cache: %s; discarding it and rebuilding", why)
        self.discard(key, model_name)
        return CacheLookup(None, self.engine_path(key, model_name), f"corrupt cache entry: {why}")

    # -- timing and calibration caches -------------------------------------------
    def timing_cache_path(self, tensorrt_version: str, gpu: GpuInfo) -> Path:
        return self.cache_dir / f"timing-trt{slug(tensorrt_version)}-{slug(gpu.name, 24)}-{gpu.sm}.cache"

    def calibration_cache_path(
        self, model_sha256: str, input_shape: Sequence[int], calibration: str, model_name: str
    ) -> Path:
        shape = "x".join(str(v) for v in input_shape[2:])
        digest = hashlib.sha256(f"{model_sha256}|{list(input_shape)}|{calibration}".encode()).hexdigest()[:20]
        return self.cache_dir / f"calib-{slug(model_name, 32)}-{shape}-{digest}.cache"

    def read_blob(self, path: Path) -> bytes:
        """Bytes of a timing/calibration cache file, or b"" when missing or unreadable."""
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return b""
        except OSError as err:
            LOG.warning("cannot read %s (%s); starting without it", path, err.strerror or err)
            return b""

    def write_blob(self, path: Path, data: bytes) -> bool:
        return self._write(path, data)

    def _write(self, path: Path, data: bytes) -> bool:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as err:
            if not self._warned_unwritable:
                LOG.warning(
                    "engine cache %s is not writable (%s): engines will be rebuilt on every start; "
                    "set engine_cache_dir to a writable folder",
                    self.cache_dir,
                    err.strerror or err,
                )
                self._warned_unwritable = True
            return False
        return True


# -- input shape and optimization profile ---------------------------------------------


def resolve_input_shape(
    model_shape: Sequence[int | None],
    input_size: Sequence[int] | None = None,
    spec_input_size: Sequence[int] | None = None,
    size_divisor: int = 1,
) -> tuple[int, int, int, int]:
    """The concrete NCHW shape to build an engine for.

    Args:
        model_shape: the ONNX input shape, None (or <= 0) for a dynamic dimension.
        input_size: (H, W) explicitly requested (parameter ``input_size`` / ``--input-size``).
        spec_input_size: (H, W) from the model's metadata YAML, used for dynamic models
            when nothing is requested; rounded up to ``size_divisor`` exactly as the
            Segmenter will size its input.
        size_divisor: from the metadata.

    Fixed dimensions of the model win; a requested size that contradicts them is a
    ConfigError. The batch is 1 (the node segments one frame at a time).
    """
    dims = [d if isinstance(d, int) and d > 0 else None for d in model_shape]
    if len(dims) != 4:
        raise ModelError(f"model input must be NCHW (4-D), got shape {list(model_shape)}")
    n, c, h, w = dims
    if n not in (None, 1):
        raise ModelError(f"model input has a fixed batch of {n}; the pipeline runs batch 1")
    c = 3 if c is None else c
    if input_size is not None:
        req = tuple(int(v) for v in input_size)
        if len(req) != 2 or min(req) <= 0:
            raise ConfigError(f"input_size must be [H, W] > 0, got {list(input_size)}")
        for name, fixed, want in (("height", h, req[0]), ("width", w, req[1])):
            if fixed is not None and fixed != want:
                raise ConfigError(
                    f"input_size {list(req)} contradicts the model's fixed input {name} {fixed} "
                    f"(shape {list(model_shape)}); leave input_size empty for this model"
                )
        target: tuple[int, int] | None = req
    elif spec_input_size is not None:
        target = (round_up(spec_input_size[0], size_divisor), round_up(spec_input_size[1], size_divisor))
    else:
        target = None
    if h is None or w is None:
        if target is None:
            raise ConfigError(
                f"the model's input {list(model_shape)} has a dynamic height/width: give input_size [H, W] "
                "(parameter input_size or --input-size) or input_size in the model's metadata YAML"
            )
        h = h if h is not None else target[0]
        w = w if w is not None else target[1]
    return (1, int(c), int(h), int(w))


def optimization_profile(shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(min, opt, max) shapes of the engine's optimization profile.

    All three are the shape in use: a robot's camera has one resolution, and a
    single-shape profile lets TensorRT pick the fastest kernels for exactly it. Another
    resolution is another cache key, hence another engine.
    """
    s = tuple(int(v) for v in shape)
    if any(v <= 0 for v in s):
        raise ConfigError(f"profile shape must be fully specified, got {list(shape)}")
    return s, s, s
