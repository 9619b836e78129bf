"""Model metadata: class names, colours, normalization and input geometry.

A model file ``NAME.onnx`` (or ``NAME.engine``/``NAME.plan``/``NAME.pt``) carries
its metadata in ``NAME.yaml`` beside it::

    name: camvid
    class_names: [sky, building, ...]
    colors: [[128, 128, 128], ...]       # RGB 0..255, one per class
    mean: [0.485, 0.456, 0.406]          # RGB, on 0..1 pixel values
    std: [0.229, 0.224, 0.225]
    input_size: [360, 480]               # H, W the model was trained at; null = any
    size_divisor: 8                      # H and W are padded/resized to multiples of this
    layout: NCHW
    channel_order: RGB
    resize: resize                       # resize | letterbox
    ignore_index: 11                     # void label id in datasets (not a class)
    drivable_classes: [road]
    obstacle_classes: [car, pedestrian, ...]
    output: logits                       # logits (N,K,h,w) | labels (N,h,w)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from seg_perception.errors import ModelError

MODEL_SUFFIXES = (".onnx", ".engine", ".plan", ".pt", ".pth")
_RESIZE_MODES = ("resize", "letterbox")


def default_palette(n: int) -> np.ndarray:
    """Distinct RGB colours (n x 3 uint8) for models whose YAML gives none (PASCAL VOC bit trick)."""
    out = np.zeros((n, 3), dtype=np.uint8)
    for i in range(n):
        c, r, g, b = i + 1, 0, 0, 0
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out[i] = (r, g, b)
    return out


@dataclass(frozen=True)
class ModelSpec:
    """Everything the pipeline needs to know about a model besides its weights.

    Attributes:
        class_names: K class names; the model's output channel k is class k.
        colors: K x 3 uint8 RGB display colours.
        mean, std: per-channel normalization in the model's channel order, applied to
            pixel values scaled to 0..1: x = (p / 255 - mean) / std.
        input_size: (H, W) the network expects, or None to run at the image's own
            size (rounded up to ``size_divisor``).
        size_divisor: H and W fed to the network are multiples of this.
        channel_order: "RGB" or "BGR" order of the input tensor's channels.
        resize: "resize" (stretch to input_size) or "letterbox" (keep aspect, pad).
        ignore_index: label id of void pixels in datasets (not predicted).
        drivable_classes, obstacle_classes: default class names for the occupancy grid.
        output: "logits" (N, K, h, w float) or "labels" (N, h, w int) — what the
            network's first output holds.
    """

    class_names: tuple[str, ...]
    colors: np.ndarray = field(repr=False)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    input_size: tuple[int, int] | None = None
    size_divisor: int = 1
    channel_order: str = "RGB"
    resize: str = "resize"
    ignore_index: int = 255
    drivable_classes: tuple[str, ...] = ()
    obstacle_classes: tuple[str, ...] = ()
    output: str = "logits"
    name: str = "model"

    def __post_init__(self) -> None:
        names = tuple(str(n) for n in self.class_names)
        if not names:
            raise ModelError("model metadata lists no class_names")
        if len(set(names)) != len(names):
            raise ModelError("model metadata has duplicate class names")
        if len(names) > 255:
            raise ModelError(f"at most 255 classes fit a mono8 label image (255 = unknown); got {len(names)}")
        object.__setattr__(self, "class_names", names)
        colors = np.asarray(self.colors if self.colors is not None else default_palette(len(names)))
        if colors.shape != (len(names), 3) or np.any(colors < 0) or np.any(colors > 255):
            raise ModelError(f"colors must be {len(names)} RGB triples in 0..255, got shape {colors.shape}")
        object.__setattr__(self, "colors", colors.astype(np.uint8))
        for key in ("mean", "std"):
            val = tuple(float(v) for v in getattr(self, key))
            if len(val) != 3 or (key == "std" and min(val) <= 0):
                raise ModelError(f"{key} must be 3 numbers (std > 0), got {getattr(self, key)!r}")
            object.__setattr__(self, key, val)
        if self.input_size is not None:
            size = tuple(int(v) for v in self.input_size)
            if len(size) != 2 or min(size) <= 0:
                raise ModelError(f"input_size must be [H, W] > 0, got {self.input_size!r}")
            object.__setattr__(self, "input_size", size)
        if int(self.size_divisor) < 1:
            raise ModelError(f"size_divisor must be >= 1, got {self.size_divisor}")
        if self.channel_order not in ("RGB", "BGR"):
            raise ModelError(f"channel_order must be RGB or BGR, got {self.channel_order!r}")
        if self.resize not in _RESIZE_MODES:
            raise ModelError(f"resize must be one of {_RESIZE_MODES}, got {self.resize!r}")
        if self.output not in ("logits", "labels"):
            raise ModelError(f"output must be 'logits' or 'labels', got {self.output!r}")
        for key in ("drivable_classes", "obstacle_classes"):
            vals = tuple(str(v) for v in getattr(self, key))
            unknown = [v for v in vals if v not in names]
            if unknown:
                raise ModelError(f"{key} names unknown classes {unknown}; classes are {list(names)}")
            object.__setattr__(self, key, vals)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_ids(self, names: Sequence[str]) -> list[int]:
        """Ids of class ``names``; raises ModelError naming any unknown one."""
        unknown = [n for n in names if n not in self.class_names]
        if unknown:
            raise ModelError(f"unknown class names {unknown}; this model's classes are {list(self.class_names)}")
        return [self.class_names.index(n) for n in names]

    @classmethod
    def from_dict(cls, data: dict, name: str = "model") -> ModelSpec:
        """Build from a parsed YAML mapping; unknown keys are rejected to catch typos."""
        if not isinstance(data, dict):
            raise ModelError(f"model metadata must be a mapping, got {type(data).__name__}")
        allowed = set(cls.__dataclass_fields__)
        extra = set(data) - allowed - {"layout", "notes", "training", "metrics", "source"}
        if extra:
            raise ModelError(f"unknown keys in model metadata: {sorted(extra)}")
        if data.get("layout", "NCHW") != "NCHW":
            raise ModelError(f"only NCHW layout is supported, got {data.get('layout')!r}")
        if "class_names" not in data:
            raise ModelError("model metadata lacks 'class_names'")
        kwargs = {k: v for k, v in data.items() if k in allowed}
        kwargs.setdefault("name", name)
        kwargs.setdefault("colors", None)
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            raise ModelError(f"invalid model metadata: {err}") from err

    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelSpec:
        """Load metadata from a YAML file; raises ModelError with the path on any problem."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as err:
            raise ModelError(f"cannot read model metadata {path}: {err.strerror or err}") from err
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ModelError(f"model metadata {path} is not valid YAML: {err}") from err
        try:
            return cls.from_dict(data, name=path.stem)
        except ModelError as err:
            raise ModelError(f"{path}: {err}") from err

    @classmethod
    def for_model(cls, model_path: str | Path) -> ModelSpec:
        """Metadata of a model file: the YAML with the same stem beside it."""
        model_path = Path(model_path)
        yaml_path = model_path.with_suffix(".yaml")
        if not yaml_path.exists():
            raise ModelError(f"model metadata {yaml_path} not found (expected beside {model_path.name})")
        return cls.from_yaml(yaml_path)

    def to_dict(self) -> dict:
        """Plain mapping suitable for YAML."""
        return {
            "name": self.name,
            "class_names": list(self.class_names),
            "colors": self.colors.tolist(),
            "mean": list(self.mean),
            "std": list(self.std),
            "input_size": list(self.input_size) if self.input_size else None,
            "size_divisor": self.size_divisor,
            "layout": "NCHW",
            "channel_order": self.channel_order,
            "resize": self.resize,
            "ignore_index": self.ignore_index,
            "drivable_classes": list(self.drivable_classes),
            "obstacle_classes": list(self.obstacle_classes),
            "output": self.output,
        }


def default_model_path() -> Path:
    """The bundled default model: ``models/camvid.onnx`` of the source tree or the installed share folder."""
    here = Path(__file__).resolve().parent
    candidates = [here.parent / "models" / "camvid.onnx"]
    try:  # installed by colcon: <prefix>/share/seg_perception/models
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("seg_perception")) / "models" / "camvid.onnx")
    except Exception:  # noqa: BLE001 - ament index absent or package not installed: source tree only
        pass
    for c in candidates:
        if c.exists():
            return c
    return candidates[-1]
