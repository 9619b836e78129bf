"""Fixtures for the evaluation tests: tiny CamVid-layout datasets and a model whose predictions are known.

The "colour model" is a 1x1 convolution whose logits are ``2 p_k . x - |p_k|^2`` for
palette colour ``p_k`` (pixels scaled to 0..1, mean 0, std 1): the arg-max is the
nearest palette colour, so an image painted in palette colours is predicted exactly as
painted. Datasets are written as PNGs (lossless) in ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import yaml

from seg_perception.camvid import CAMVID_CLASSES
from seg_perception.model_spec import ModelSpec

CLASSES = CAMVID_CLASSES
#: well separated RGB colours, one per class (so nearest-colour prediction is exact)
PALETTE = np.array(
    [
        [0, 0, 255],
        [255, 0, 0],
        [0, 255, 0],
        [255, 255, 0],
        [255, 0, 255],
        [0, 255, 255],
        [128, 0, 0],
        [0, 128, 0],
        [0, 0, 128],
        [255, 255, 255],
        [0, 0, 0],
    ],
    dtype=np.uint8,
)
VOID = 11


def write_onnx_conv(path: Path, weight: np.ndarray, bias: np.ndarray, spec: ModelSpec) -> Path:
    """A dynamic-size 1x1-conv ONNX model (input "input" [1,3,H,W] -> "logits" [1,K,H,W]) plus its YAML."""
    import onnx
    from onnx import TensorProto, helper

    k = weight.shape[0]
    w = weight.reshape(k, 3, 1, 1).astype(np.float32)
    b = bias.astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "W", "B"], ["logits"])],
        "colour",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, k, "H", "W"])],
        [
            helper.make_tensor("W", TensorProto.FLOAT, w.shape, w.ravel()),
            helper.make_tensor("B", TensorProto.FLOAT, b.shape, b),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    path.with_suffix(".yaml").write_text(yaml.safe_dump(spec.to_dict()))
    return path


def make_colour_model(path: Path, class_names: Sequence[str] = CLASSES, palette: np.ndarray = PALETTE) -> Path:
    """The nearest-palette-colour model (see module docstring); YAML class names may differ in count for error tests."""
    p = palette.astype(np.float64) / 255.0
    spec = ModelSpec(
        class_names=tuple(class_names),
        colors=np.resize(palette, (len(class_names), 3)),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        ignore_index=VOID,
        drivable_classes=("road",) if "road" in class_names else (),
        name=path.stem,
    )
    return write_onnx_conv(path, 2.0 * p, -(p * p).sum(axis=1), spec)


def paint(class_map: np.ndarray, palette: np.ndarray = PALETTE) -> np.ndarray:
    """HxW class ids -> HxWx3 uint8 RGB in palette colours."""
    return palette[np.asarray(class_map)]


def write_dataset(
    root: Path, frames: Sequence[tuple[np.ndarray, np.ndarray]], split: str = "test", names: Sequence[str] | None = None
) -> Path:
    """Write (rgb, labels) frames in CamVid layout: root/<split>/x.png, root/<split>annot/x.png, root/<split>.txt."""
    (root / split).mkdir(parents=True, exist_ok=True)
    (root / f"{split}annot").mkdir(exist_ok=True)
    lines = []
    for i, (rgb, labels) in enumerate(frames):
        name = names[i] if names else f"seq_{i:04d}.png"
        cv2.imwrite(str(root / split / name), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(root / f"{split}annot" / name), labels)
        lines.append(f"{split}/{name} {split}annot/{name}")
    (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def known_frames() -> list[tuple[np.ndarray, np.ndarray]]:
    """Two 4x8 frames with a hand-computable score under the colour model.

    Frame 1: image = sky (cols 0-3) | road (cols 4-7); ground truth row 0 void, rows 1-3
    sky | road (cols 4-5) | car (cols 6-7). Frame 2: all tree, one ground-truth pixel 20
    (>= num_classes: ignored).
    Valid pixels: 24 + 31. sky IoU 12/12 = 1; road TP 6, FP 6 -> 0.5; car TP 0 -> 0;
    tree 31/31 = 1; others absent (NaN). mIoU = 2.5 / 4 = 0.625; pixel accuracy 49/55.
    """
    img1 = np.zeros((4, 8), np.uint8)
    img1[:, 4:] = 3
    gt1 = img1.copy()
    gt1[:, 6:] = 8
    gt1[0, :] = VOID
    img2 = np.full((4, 8), 5, np.uint8)
    gt2 = img2.copy()
    gt2[2, 3] = 20
    return [(paint(img1), gt1), (paint(img2), gt2)]


KNOWN_MIOU = 0.625
KNOWN_PIXEL_ACCURACY = 49 / 55
KNOWN_IOU = {"sky": 1.0, "road": 0.5, "car": 0.0, "tree": 1.0}


@pytest.fixture
def colour_model(tmp_path: Path) -> Path:
    return make_colour_model(tmp_path / "colour.onnx")


@pytest.fixture
def known_dataset(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "known", known_frames())


@pytest.fixture
def street_dataset(tmp_path: Path) -> Path:
    """Three 48x64 synthetic street frames (time order = name order) in CamVid layout."""
    from seg_perception.synthetic.street import render_street

    frames = []
    for seed in range(3):
        scene = render_street(seed, 48, 64)
        frames.append((scene.rgb, scene.labels))
    return write_dataset(tmp_path / "street", frames)


@pytest.fixture
def ev() -> SimpleNamespace:
    """Helpers and constants for tests (conftest modules are not importable under --import-mode=importlib)."""
    return SimpleNamespace(
        make_colour_model=make_colour_model,
        write_onnx_conv=write_onnx_conv,
        write_dataset=write_dataset,
        paint=paint,
        known_frames=known_frames,
        CLASSES=CLASSES,
        PALETTE=PALETTE,
        VOID=VOID,
        KNOWN_MIOU=KNOWN_MIOU,
        KNOWN_PIXEL_ACCURACY=KNOWN_PIXEL_ACCURACY,
        KNOWN_IOU=KNOWN_IOU,
    )
