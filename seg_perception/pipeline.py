"""The one segmentation path: pre-process -> backend -> post-process (``Segmenter``).

The node, ``eval``, ``eval-bag``, ``query`` and ``demo`` all call ``Segmenter``. Pre-processing
is ``backends.preprocess``; post-processing maps the output back to the image's resolution.
The contract of both is in docs/backends.md.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from seg_perception.backends.base import Backend
from seg_perception.backends.preprocess import Geometry, Preprocessor
from seg_perception.errors import ModelError
from seg_perception.model_spec import ModelSpec
from seg_perception.upsampling import UNKNOWN_LABEL, first_argmax, upsampled_labels

__all__ = ["UNKNOWN_LABEL", "Frame", "Segmentation", "Segmenter", "argmax_confidence", "colorize", "overlay"]


@dataclass
class Segmentation:
    """Result for one image.

    Attributes:
        labels: HxW uint8 class ids at the input image's resolution (255 = unknown).
        confidence: HxW uint8 softmax probability of the chosen class x 255, or None
            when not requested (or the model outputs labels only).
        timings: milliseconds per stage: "preprocess", "inference", "postprocess".
    """

    labels: np.ndarray
    confidence: np.ndarray | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Frame:
    """A segmented frame with the header of the image it came from (immutable: shared between threads).

    Attributes:
        rgb: HxWx3 uint8 RGB input image.
        labels, confidence: as in Segmentation.
        stamp: (sec, nanosec) of the input header.
        frame_id: input header frame_id (camera optical frame).
        timings: per-stage milliseconds (decode/preprocess/inference/postprocess/...).
        depth: float32 HxW metres registered to ``rgb`` (NaN = no reading), or None without depth.
    """

    rgb: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray | None
    stamp: tuple[int, int] = (0, 0)
    frame_id: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    depth: np.ndarray | None = None


class Segmenter:
    """Runs a model on RGB images and returns per-pixel labels and confidence.

    Args:
        backend: a loaded inference backend.
        spec: the model's metadata.
        input_size: optional (H, W) override of the network size for dynamic-shape models.
    """

    def __init__(self, backend: Backend, spec: ModelSpec, input_size: tuple[int, int] | None = None) -> None:
        self.backend = backend
        self.spec = spec
        channels = backend.input_spec.shape[1]
        if isinstance(channels, int) and channels != 3:
            raise ModelError(f"model input has {channels} channels; only 3-channel images are supported")
        out_shape = backend.output_spec.shape
        if spec.output == "logits" and len(out_shape) == 4 and isinstance(out_shape[1], int):
            if out_shape[1] != spec.num_classes:
                raise ModelError(
                    f"model outputs {out_shape[1]} classes but its metadata lists {spec.num_classes} class names"
                )
        self._input_size = input_size
        self._pre = Preprocessor(spec, backend.input_spec.static_hw, input_size)
        self._backend_lock = threading.Lock()  # a swap waits for the frame in flight

    def swap_backend(self, backend: Backend) -> Backend:
        """Serve with ``backend`` from the next frame on (e.g. a TensorRT engine built in the background);
        returns the previous one, no longer in use, for the caller to close.

        Raises:
            ModelError: the new backend's input channels or class count differ from the current model's.
        """
        new_out, old_out = backend.output_spec.shape, self.backend.output_spec.shape
        if backend.input_spec.shape[1] != self.backend.input_spec.shape[1] or (
            len(new_out) == 4 and len(old_out) == 4 and new_out[1] != old_out[1]
        ):
            raise ModelError(f"backend {backend.description} does not run the same model as {self.backend.description}")
        pre = Preprocessor(self.spec, backend.input_spec.static_hw, self._input_size)
        with self._backend_lock:
            old, self.backend, self._pre = self.backend, backend, pre
        return old

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.spec.class_names

    def geometry(self, height: int, width: int) -> Geometry:
        """Network size and content region for an image of height x width pixels."""
        return self._pre.geometry(height, width)

    def preprocess(self, rgb: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """HxWx3 uint8 RGB -> (1x3xHxW float32 tensor, geometry)."""
        return self._pre(rgb)

    def postprocess(
        self, output: np.ndarray, geo: Geometry, want_confidence: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Network output -> (HxW uint8 labels, HxW uint8 confidence or None) at image resolution."""
        out = np.asarray(output)
        h, w = geo.image
        if (
            self.spec.output == "labels"
            or out.ndim == 3
            or (out.ndim == 4 and out.shape[1] == 1 and self.spec.num_classes > 1)
        ):
            lab = out.reshape(out.shape[-2:]) if out.ndim >= 2 else out
            lab = self._crop(lab, geo)
            lab = lab.astype(np.int64)
            lab = np.where((lab >= 0) & (lab < self.spec.num_classes), lab, UNKNOWN_LABEL).astype(np.uint8)
            if lab.shape != (h, w):
                lab = cv2.resize(lab, (w, h), interpolation=cv2.INTER_NEAREST)
            return lab, None
        if out.ndim != 4 or out.shape[0] != 1:
            raise ModelError(f"expected logits of shape (1, K, h, w), got {out.shape}")
        if out.shape[1] != self.spec.num_classes:
            raise ModelError(f"model produced {out.shape[1]} classes; metadata lists {self.spec.num_classes}")
        logits = self._crop(out[0], geo)  # K, h', w'
        if not want_confidence and logits.shape[1:] != (h, w) and logits.shape[1] <= h and logits.shape[2] <= w:
            # Up-sampling: the labels of resizing the logits first, at a fraction of the cost
            # (seg_perception/upsampling.py). Confidence needs every softmax, so it takes the full path.
            return upsampled_labels(logits, (h, w)), None
        if logits.shape[1:] != (h, w):
            k = logits.shape[0]
            hwk = np.ascontiguousarray(logits.transpose(1, 2, 0), dtype=np.float32)
            if k <= 512:
                hwk = cv2.resize(hwk, (w, h), interpolation=cv2.INTER_LINEAR)
            else:  # cv2 handles at most 512 channels
                hwk = np.concatenate(
                    [cv2.resize(np.ascontiguousarray(hwk[..., i : i + 512]), (w, h)) for i in range(0, k, 512)], axis=2
                )
            logits = hwk.reshape(h, w, k).transpose(2, 0, 1)
        return argmax_confidence(logits, want_confidence)

    @staticmethod
    def _crop(arr: np.ndarray, geo: Geometry) -> np.ndarray:
        """Crop the content region from an output at the network's or a reduced resolution."""
        oh, ow = arr.shape[-2:]
        ch = max(1, round(geo.content[0] * oh / geo.net[0]))
        cw = max(1, round(geo.content[1] * ow / geo.net[1]))
        return arr[..., :ch, :cw]

    def segment(self, rgb: np.ndarray, want_confidence: bool = True) -> Segmentation:
        """Segment one HxWx3 uint8 RGB image."""
        with self._backend_lock:
            return self._segment(rgb, want_confidence)

    def _segment(self, rgb: np.ndarray, want_confidence: bool) -> Segmentation:
        t0 = time.perf_counter()
        tensor, geo = self.preprocess(rgb)
        t1 = time.perf_counter()
        fast = None
        infer_labels = getattr(self.backend, "infer_labels", None)
        if infer_labels is not None and self.spec.output == "logits":
            # Backends that arg-max on their device (TensorRT, torch CUDA) return ids at image size, so the
            # logits never reach the host; their "inference" time then includes the post-processing.
            fast = infer_labels(
                tensor,
                want_confidence=want_confidence,
                content_hw=geo.content,
                image_hw=geo.image,
                num_classes=self.spec.num_classes,
            )
        if fast is not None:
            labels, conf = fast
            t2 = t3 = time.perf_counter()
        else:
            output = self.backend.infer(tensor)
            t2 = time.perf_counter()
            labels, conf = self.postprocess(output, geo, want_confidence)
            t3 = time.perf_counter()
        return Segmentation(
            labels,
            conf,
            {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3, "postprocess": (t3 - t2) * 1e3},
        )


def argmax_confidence(logits: np.ndarray, want_confidence: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-pixel arg-max and softmax confidence of (K, H, W) float logits, K <= 255.

    Returns (HxW uint8 labels, HxW uint8 round(255 * p_max) or None). Ties go to the lower
    class id (as ``np.argmax``); pixels whose logits are NaN get 255 (unknown).
    """
    logits = np.ascontiguousarray(logits, dtype=np.float32)
    k = logits.shape[0]
    best = logits.max(axis=0)
    labels = first_argmax(logits, best)
    if not want_confidence:
        return labels, None
    total = np.zeros_like(best)
    tmp = np.empty_like(best)
    for c in range(k):
        np.subtract(logits[c], best, out=tmp)
        cv2.exp(tmp, tmp)
        total += tmp
    conf = np.rint(255.0 / total).astype(np.uint8)
    return labels, conf


def colorize(labels: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """HxW class ids -> HxWx3 uint8 RGB colours; 255 (unknown) and ids without a colour are black."""
    lut = np.zeros((256, 3), np.uint8)
    lut[: len(colors)] = colors[:255]
    return lut[labels]


def overlay(rgb: np.ndarray, labels: np.ndarray, colors: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend class colours over an HxWx3 uint8 RGB image; unknown pixels keep the image."""
    color = colorize(labels, colors)
    blended = cv2.addWeighted(rgb, 1.0 - alpha, color, alpha, 0.0)
    unknown = labels == UNKNOWN_LABEL
    if np.any(unknown):
        blended[unknown] = rgb[unknown]
    return blended
