"""The project's one pre-processing: HxWx3 uint8 RGB -> 1x3xHxW float32 network input.

Used by the ``Segmenter`` at run time and by INT8 calibration, so both feed the network
the same tensors. The sizing and normalisation contract is in docs/backends.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from seg_perception.errors import ImageError
from seg_perception.model_spec import ModelSpec

__all__ = ["Geometry", "Preprocessor", "round_up"]


def round_up(v: int, d: int) -> int:
    """``v`` rounded up to a multiple of ``d`` (both ints > 0)."""
    return -(-int(v) // int(d)) * int(d)


@dataclass(frozen=True)
class Geometry:
    """How one image maps into the network input, all (H, W) in pixels.

    ``image`` is the input image, ``net`` the full tensor fed to the network and
    ``content`` the top-left region of it holding image pixels (the rest is padding).
    """

    image: tuple[int, int]
    net: tuple[int, int]
    content: tuple[int, int]


class Preprocessor:
    """Sizes, pads and normalises RGB images for one model.

    Args:
        spec: the model's metadata (mean, std, channel order, resize mode, sizes).
        static_hw: the backend's fixed input (H, W), or None for a dynamic-size input.
        input_size: optional (H, W) override of the network size for dynamic inputs.
    """

    def __init__(
        self, spec: ModelSpec, static_hw: tuple[int, int] | None = None, input_size: tuple[int, int] | None = None
    ) -> None:
        self.spec = spec
        self._static = static_hw
        self._size_override = input_size
        mean = np.asarray(spec.mean, np.float32)
        std = np.asarray(spec.std, np.float32)
        self._swap = spec.channel_order == "BGR"
        # (p/255 - mean)/std folded into one multiply-add per pixel.
        self._scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._bias = (-mean / std).astype(np.float32)
        self._pad_value = tuple(float(v) for v in np.clip(mean * 255.0, 0, 255))

    def geometry(self, height: int, width: int) -> Geometry:
        """Network size and content region for an image of height x width pixels."""
        if self._static is not None:
            target = net = self._static
        else:
            target = self._size_override or self.spec.input_size or (height, width)
            div = self.spec.size_divisor
            net = (round_up(target[0], div), round_up(target[1], div))
        th, tw = int(target[0]), int(target[1])
        if self.spec.resize == "letterbox" and (th, tw) != (height, width):
            s = min(th / height, tw / width)
            content = (max(1, min(th, round(height * s))), max(1, min(tw, round(width * s))))
        else:
            content = (th, tw)
        return Geometry((height, width), net, content)

    def __call__(self, rgb: np.ndarray) -> tuple[np.ndarray, Geometry]:
        """HxWx3 uint8 RGB -> (1x3xHxW float32 tensor, geometry); ImageError for anything else."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            shape = getattr(rgb, "shape", None)
            raise ImageError(f"expected an HxWx3 uint8 RGB image, got {type(rgb).__name__} {shape}")
        h, w = rgb.shape[:2]
        if h < 1 or w < 1:
            raise ImageError(f"image is empty ({w}x{h})")
        geo = self.geometry(h, w)
        img = rgb[..., ::-1] if self._swap else rgb
        ch, cw = geo.content
        if (ch, cw) != (h, w):
            img = cv2.resize(np.ascontiguousarray(img), (cw, ch), interpolation=cv2.INTER_LINEAR)
        if (ch, cw) != geo.net:
            img = cv2.copyMakeBorder(
                np.ascontiguousarray(img),
                0,
                geo.net[0] - ch,
                0,
                geo.net[1] - cw,
                cv2.BORDER_CONSTANT,
                value=self._pad_value,
            )
        # Straight into NCHW, one plane at a time: 4x faster than HWC float maths plus a transpose.
        x = np.empty((1, 3, geo.net[0], geo.net[1]), np.float32)
        for c, plane in enumerate(cv2.split(np.ascontiguousarray(img))):
            np.multiply(plane, self._scale[c], out=x[0, c], dtype=np.float32)
            x[0, c] += self._bias[c]
        return x, geo
