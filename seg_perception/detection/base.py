"""Detector interface, the Objectron SSD detector (TFLite through ai-edge-litert) and ``load_detector``.

Conventions: images are HxWx3 uint8 RGB; a Detection's box is (x, y, width, height) in
pixels of the input image; scores are sigmoid probabilities 0..1.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seg_perception.detection.anchors import ssd_anchors
from seg_perception.detection.boxes import decode_boxes, nms
from seg_perception.errors import BackendUnavailable, ConfigError, ImageError, ModelError

MODEL_FILE = "objectron_ssd_mobilenetv2_oidv4_fp16.tflite"
LABEL_FILE = "objectron_labelmap.txt"
INPUT_SIZE = 300
MIN_INPUT_SIDE = 32  # pixels; smaller frames carry too little for a 300x300 detector


def model_dir() -> Path:
    """Cache folder of fetched models: $SEG_PERCEPTION_MODELS or ~/.cache/seg_perception/models."""
    env = os.environ.get("SEG_PERCEPTION_MODELS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "seg_perception" / "models"


@dataclass(frozen=True)
class Detection:
    """One detected object: class name, score 0..1, box (x, y, width, height) in pixels (float)."""

    class_name: str
    score: float
    box: tuple[float, float, float, float]


class Detector:
    """Interface: ``class_names`` and ``detect(rgb) -> list[Detection]`` (best score first)."""

    name = "detector"
    class_names: tuple[str, ...] = ()

    def detect(self, rgb: np.ndarray, min_score: float = 0.3) -> list[Detection]:  # pragma: no cover - interface
        raise NotImplementedError


class ObjectronDetector(Detector):
    """MediaPipe Objectron's first stage: SSD-MobileNetV2 on Open Images V4 (23 classes).

    Args:
        folder: folder holding the TFLite model and label map (default ``model_dir()``).
        threads: interpreter threads.

    Raises:
        ModelError: the model or label map is missing or unreadable (says how to fetch it).
        BackendUnavailable: ai-edge-litert is not installed.
    """

    name = "objectron"

    def __init__(self, folder: str | Path | None = None, threads: int = 2) -> None:
        folder = Path(folder) if folder else model_dir()
        model, labels = folder / MODEL_FILE, folder / LABEL_FILE
        if not model.is_file() or not labels.is_file():
            raise ModelError(f"detector model not installed in {folder}; run 'seg-perception fetch-models'")
        names = [line.strip() for line in labels.read_text().splitlines() if line.strip()]
        if len(names) < 2 or names[0] != "???":
            raise ModelError(f"label map {labels} is corrupt (expected '???' then class names)")
        self._labels = names  # index 0 = background
        self.class_names = tuple(names[1:])
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as err:
            raise BackendUnavailable("the detector needs ai-edge-litert (pip install ai-edge-litert)") from err
        try:
            self._interp = Interpreter(model_path=str(model), num_threads=threads)
            self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"detector model {model} is corrupt: {err}") from err
        self._input = self._interp.get_input_details()[0]["index"]
        outs = sorted(self._interp.get_output_details(), key=lambda d: int(d["shape"][-1]))
        self._box_out, self._cls_out = outs[0]["index"], outs[-1]["index"]
        self._anchors = ssd_anchors(INPUT_SIZE)

    def raw(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw outputs for one image: box encodings (1917, 4) and class logits (1917, 24), float32."""
        import cv2

        x = cv2.resize(rgb, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA).astype(np.float32)
        x = x[None] / 127.5 - 1.0
        self._interp.set_tensor(self._input, x)
        self._interp.invoke()
        return self._interp.get_tensor(self._box_out)[0], self._interp.get_tensor(self._cls_out)[0]

    def detect(self, rgb: np.ndarray, min_score: float = 0.3, iou_threshold: float = 0.45) -> list[Detection]:
        """Detections in ``rgb`` (HxWx3 uint8) scoring at least ``min_score``, after per-class NMS.

        Raises:
            ImageError: the image is not HxWx3 or smaller than MIN_INPUT_SIDE pixels on a side.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] < 3:
            raise ImageError(f"detector needs an HxWx3 RGB image, got shape {rgb.shape}")
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_INPUT_SIDE:
            raise ImageError(f"frame {w}x{h} is too small for the detector (at least {MIN_INPUT_SIDE} px a side)")
        enc, logits = self.raw(np.ascontiguousarray(rgb[..., :3], dtype=np.uint8))
        probs = 1.0 / (1.0 + np.exp(-logits[:, 1:].astype(np.float64)))
        boxes = np.clip(decode_boxes(enc, self._anchors), 0.0, 1.0)
        out: list[Detection] = []
        for c in range(probs.shape[1]):
            idx = np.flatnonzero(probs[:, c] >= min_score)
            if idx.size == 0:
                continue
            for k in idx[nms(boxes[idx], probs[idx, c], iou_threshold)]:
                y0, x0, y1, x1 = boxes[k]
                box = (float(x0 * w), float(y0 * h), float((x1 - x0) * w), float((y1 - y0) * h))
                out.append(Detection(self.class_names[c], float(probs[k, c]), box))
        out.sort(key=lambda d: -d.score)
        return out


_DETECTORS = {"objectron": ObjectronDetector}


def load_detector(name: str = "objectron", folder: str | Path | None = None) -> Detector:
    """The detector called ``name`` (ConfigError for an unknown name; ModelError when not installed)."""
    cls = _DETECTORS.get(str(name).strip().lower())
    if cls is None:
        raise ConfigError(f"unknown detector {name!r}; known: {', '.join(sorted(_DETECTORS))}")
    return cls(folder)
