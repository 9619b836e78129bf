#!/usr/bin/env python3
"""Which convolutions cost INT8 accuracy: each Conv left float in turn, label agreement with fp32.

The sweep behind INT8 recipe 3 (docs/deploying.md, "INT8 recipe"). Calibration frames come
from ``--calib`` (train), agreement is measured on ``--verify-dir`` frames (val; never test).
Prints one line per convolution, sorted by agreement, best first.

    python scripts/int8_sensitivity.py [--model models/camvid.onnx] [--top 10]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from tqdm import tqdm

from seg_perception.backends import precision
from seg_perception.backends.quant_recipe import optimize_basic
from seg_perception.model_spec import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
CAMVID = ROOT.parent / "shared" / "datasets" / "camvid"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, default=ROOT / "models" / "camvid.onnx")
    p.add_argument("--calib", type=Path, default=CAMVID / "train")
    p.add_argument("--verify-dir", type=Path, default=CAMVID / "val")
    p.add_argument("--verify-images", type=int, default=20)
    p.add_argument("--top", type=int, default=10, help="lines printed (all go to --json)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    import onnx

    spec = ModelSpec.for_model(args.model)
    verify = precision.list_calibration_images(args.verify_dir, max_images=args.verify_images)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="seg_sens_") as tmp:
        prepared = optimize_basic(args.model, Path(tmp) / "prepared.onnx")
        convs = [n.name for n in onnx.load(str(prepared)).graph.node if n.op_type == "Conv"]
        for name in tqdm([""] + convs, desc="convs left float", unit="model"):
            out = Path(tmp) / "q.onnx"
            precision.quantize_int8(
                args.model,
                args.calib,
                out,
                verify_images=0,
                use_cache=False,
                keep_image_conv_float=False,
                float_nodes=[name] if name else [],
            )
            results[name or "(all quantized)"] = precision.verify_against(args.model, out, verify, spec).label_agreement
    base = results["(all quantized)"]
    ranked = sorted(results.items(), key=lambda kv: -kv[1])
    print(f"{'left float':48s} agreement  vs all-int8 ({len(verify)} frames of {args.verify_dir})")
    for name, agree in ranked[: args.top]:
        print(f"{name:48s} {100 * agree:8.2f} %  {100 * (agree - base):+6.2f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
