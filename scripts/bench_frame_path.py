#!/usr/bin/env python3
"""Per-frame cost of the node's path beyond the network, old against new, in one run.

    python scripts/bench_frame_path.py [--repeats 30]

For 640x480 and 1280x720 camera frames (CamVid val frames, resized): message -> RGB,
post-processing (labels at image size), labels -> Image message, publish over rclpy,
and grid + scan (projection and messages). "old" is the previous path: logits resized
to the image before the arg-max, and ``bytes`` assigned to the message data.
Medians in milliseconds; inference is timed but excluded from the sum.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median_ms(fn, repeats: int) -> float:
    fn()
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        t.append(time.perf_counter() - t0)
    return float(np.median(t) * 1e3)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "camvid")
    args = p.parse_args()

    import rclpy
    from sensor_msgs.msg import CameraInfo, Image

    from seg_perception.assembly import build_mapper
    from seg_perception.backends.select import select_backend
    from seg_perception.conversions.image import image_msg_to_rgb, numpy_to_image_msg
    from seg_perception.conversions.occupancy import grid_to_msg, ranges_to_scan_msg
    from seg_perception.model_spec import ModelSpec
    from seg_perception.node_config import NodeConfig
    from seg_perception.pipeline import Segmenter, argmax_confidence
    from seg_perception.ros.stream import load_frames
    from seg_perception.ros.transport import apply_default_profile

    model = ROOT / "models" / "camvid.onnx"
    spec = ModelSpec.for_model(model)
    seg = Segmenter(select_backend("onnxruntime", model, num_threads=2).backend, spec)
    apply_default_profile()
    rclpy.init()
    node = rclpy.create_node("bench_frame_path")
    pub = node.create_publisher(Image, "/bench_frame_path/labels", 10)
    print(f"median ms over {args.repeats} runs (2 ORT threads); sum = everything but inference")

    def bench_size(w: int, h: int) -> None:
        rgb = load_frames((w, h), args.data if args.data.is_dir() else None, 1)[0]
        msg = numpy_to_image_msg(rgb, "rgb8", msg_cls=Image)
        tensor, geo = seg.preprocess(rgb)
        logits = seg.backend.infer(tensor)
        labels, _ = seg.postprocess(logits, geo, want_confidence=False)

        def old_post() -> np.ndarray:
            lg = logits[0]
            hwk = cv2.resize(np.ascontiguousarray(lg.transpose(1, 2, 0)), (w, h), interpolation=cv2.INTER_LINEAR)
            return argmax_confidence(hwk.transpose(2, 0, 1), False)[0]

        def old_msg() -> Image:
            m = Image(height=h, width=w, encoding="mono8", step=w)
            m.data = labels.tobytes()
            return m

        cfg = NodeConfig.from_params({})
        mapper = build_mapper(cfg, spec)
        info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
        f = 0.8 * w
        info.k = [f, 0.0, (w - 1) / 2, 0.0, f, (h - 1) / 2, 0.0, 0.0, 1.0]
        info.d = [0.0] * 5
        mapper.set_camera_info(info)

        def grid() -> None:
            out = mapper.process(labels)
            grid_to_msg(out.grid, mapper.grid, stamp=(1, 0))
            if out.scan_ranges is not None and mapper.scanner is not None:
                ranges_to_scan_msg(out.scan_ranges, mapper.scanner.spec, mapper.grid.frame_id, stamp=(1, 0))

        new_msg = numpy_to_image_msg(labels, "mono8", msg_cls=Image)
        rows = {
            "decode (msg -> rgb)": (median_ms(lambda: image_msg_to_rgb(msg), args.repeats),) * 2,
            "preprocess": (median_ms(lambda: seg.preprocess(rgb), args.repeats),) * 2,
            "postprocess": (
                median_ms(old_post, args.repeats),
                median_ms(lambda: seg.postprocess(logits, geo, want_confidence=False), args.repeats),
            ),
            "labels -> msg": (
                median_ms(old_msg, args.repeats),
                median_ms(lambda: numpy_to_image_msg(labels, "mono8", msg_cls=Image), args.repeats),
            ),
            "publish": (median_ms(lambda: pub.publish(new_msg), args.repeats),) * 2,
        }
        inference = median_ms(lambda: seg.backend.infer(tensor), args.repeats)
        grid_ms = median_ms(grid, args.repeats)
        print(f"{w}x{h}:   {'old':>8s} {'new':>8s}")
        for k, (o, n) in rows.items():
            print(f"  {k:22s} {o:8.2f} {n:8.2f}")
        so, sn = (sum(v[i] for v in rows.values()) for i in (0, 1))
        print(f"  {'sum (no inference)':22s} {so:8.2f} {sn:8.2f}   new/old {sn / so:.2f}x")
        print(f"  {'inference':22s} {inference:8.2f}")
        print(f"  {'grid + scan (only while subscribed)':22s} {grid_ms:8.2f}")
        agree = float((old_post() == labels).mean())
        print(f"  labels equal to the old path on {agree * 100:.3f} % of pixels")

    for size in ((640, 480), (1280, 720)):
        bench_size(*size)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
