"""Image/CompressedImage <-> numpy: every supported encoding, odd sizes, padded step, bad input."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage, Image

from seg_perception.conversions.image import (
    ENCODINGS,
    INPUT_ENCODINGS,
    any_image_msg_to_rgb,
    compressed_msg_to_rgb,
    image_fields,
    image_msg_to_numpy,
    image_msg_to_rgb,
    numpy_to_image_msg,
    rgb_to_compressed_msg,
)
from seg_perception.errors import ImageError

RNG = np.random.default_rng(7)


def _pixels(encoding: str, h: int = 5, w: int = 7) -> np.ndarray:
    c = ENCODINGS[encoding]
    shape = (h, w) if c == 1 else (h, w, c)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _padded(arr: np.ndarray, encoding: str, pad: int) -> Image:
    """An Image whose rows carry ``pad`` junk bytes after the pixels."""
    h, w = arr.shape[:2]
    row = arr.reshape(h, -1)
    rows = np.concatenate([row, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    msg = Image(height=h, width=w, encoding=encoding, step=rows.shape[1])
    msg.data = rows.tobytes()
    return msg


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize(("h", "w"), [(1, 1), (5, 7), (33, 17)])
def test_round_trip_every_encoding_and_odd_sizes(encoding, h, w):
    arr = _pixels(encoding, h, w)
    msg = numpy_to_image_msg(arr, encoding, msg_cls=Image)
    assert (msg.height, msg.width, msg.encoding) == (h, w, encoding)
    assert msg.step == w * ENCODINGS[encoding]
    np.testing.assert_array_equal(image_msg_to_numpy(msg), arr)


@pytest.mark.parametrize("encoding", INPUT_ENCODINGS)
@pytest.mark.parametrize("pad", [1, 3, 64])
def test_padded_step_is_cropped(encoding, pad):
    arr = _pixels(encoding, 6, 9)
    np.testing.assert_array_equal(image_msg_to_numpy(_padded(arr, encoding, pad)), arr)


@pytest.mark.parametrize("encoding", INPUT_ENCODINGS)
def test_to_rgb_channel_order(encoding):
    rgb = _pixels("rgb8", 4, 6)
    if encoding == "rgb8":
        src = rgb
    elif encoding == "bgr8":
        src = rgb[..., ::-1]
    elif encoding == "rgba8":
        src = np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)])
    elif encoding == "bgra8":
        src = np.dstack([rgb[..., ::-1], np.full(rgb.shape[:2], 9, np.uint8)])
    else:
        src = rgb[..., 0]
        rgb = np.repeat(src[..., None], 3, axis=2)
    out = image_msg_to_rgb(numpy_to_image_msg(np.ascontiguousarray(src), encoding, msg_cls=Image))
    assert out.dtype == np.uint8 and out.shape == rgb.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


def test_header_is_copied():
    src = Image()
    src.header.stamp.sec, src.header.stamp.nanosec, src.header.frame_id = 12, 34, "cam"
    out = numpy_to_image_msg(_pixels("mono8"), "mono8", src.header, msg_cls=Image)
    assert (out.header.stamp.sec, out.header.stamp.nanosec, out.header.frame_id) == (12, 34, "cam")


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda m: setattr(m, "encoding", "yuv422"), "unsupported encoding"),
        (lambda m: setattr(m, "encoding", "16UC1"), "unsupported encoding"),
        (lambda m: setattr(m, "step", 3), "step"),
        (lambda m: setattr(m, "data", bytes(m.data)[:-1]), "expected height x step"),
        (lambda m: setattr(m, "data", b""), "expected height x step"),
        (lambda m: setattr(m, "height", 0), "invalid image size"),
        (lambda m: setattr(m, "width", 100000), "invalid image size"),
    ],
)
def test_malformed_images_raise_image_error(mutate, needle):
    msg = numpy_to_image_msg(_pixels("rgb8"), "rgb8", msg_cls=Image)
    mutate(msg)
    with pytest.raises(ImageError, match=needle):
        image_msg_to_rgb(msg)


def test_not_an_image():
    with pytest.raises(ImageError):
        image_msg_to_numpy(object())


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_round_trip(fmt):
    rgb = cv2.GaussianBlur(_pixels("rgb8", 32, 48), (7, 7), 0)  # smooth so jpeg error is small
    msg = rgb_to_compressed_msg(rgb, fmt, quality=95, msg_cls=CompressedImage)
    assert isinstance(msg, CompressedImage) and msg.format == fmt
    out = compressed_msg_to_rgb(msg)
    assert out.shape == rgb.shape
    err = np.abs(out.astype(int) - rgb.astype(int))
    assert (err.max() == 0) if fmt == "png" else (err.mean() < 4)
    np.testing.assert_array_equal(any_image_msg_to_rgb(msg), out)


def test_compressed_grey_png_becomes_rgb():
    grey = _pixels("mono8", 8, 8)
    ok, buf = cv2.imencode(".png", grey)
    msg = CompressedImage(format="png", data=buf.tobytes())
    out = compressed_msg_to_rgb(msg)
    np.testing.assert_array_equal(out, np.repeat(grey[..., None], 3, axis=2))


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 20])
def test_corrupt_compressed_raises(data):
    with pytest.raises(ImageError):
        compressed_msg_to_rgb(CompressedImage(format="jpeg", data=data))


def test_image_fields_for_other_message_flavours():
    arr = _pixels("bgr8", 3, 4)
    f = image_fields(arr, "bgr8")
    assert f["step"] == 12 and f["data"].dtype == np.uint8 and f["data"].size == 36
    with pytest.raises(ImageError):
        image_fields(arr, "mono8")
    with pytest.raises(ImageError):
        image_fields(arr.astype(np.uint16), "bgr8")
