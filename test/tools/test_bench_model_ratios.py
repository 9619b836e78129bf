"""scripts/bench_model.py --repeat: the ratios it collects from each run's printout."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_model.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_model", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_printed_ratio_is_collected_under_a_stable_name() -> None:
    out = "\n".join(
        [
            "model camvid.onnx: 0.746 M params, 1.73 GFLOPs at 360x480",
            "ONNX Runtime CPU (network)                    12.98      16.27",
            "ratio PyTorch eager / ONNX Runtime: 3.19x",
            "ratio dynamic-shape / pinned-shape ONNX Runtime session: 1.07x",
            "ONNX Runtime CPU int8 Q/DQ (network)          10.64      13.30   0.49x fp32",
            "Segmenter int8: labels                        13.48      16.22   0.53x fp32",
            "ratio camvid.onnx / baseline, network: 1.59x; Segmenter labels: 1.79x",
        ]
    )
    assert _script()._ratios(out) == {
        "PyTorch eager / ONNX Runtime": 3.19,
        "dynamic-shape / pinned-shape ONNX Runtime session": 1.07,
        "ONNX Runtime CPU int8 Q/DQ (network) / fp32": 0.49,
        "Segmenter int8: labels / fp32": 0.53,
        "camvid.onnx / baseline, network": 1.59,
        "camvid.onnx / baseline, Segmenter labels": 1.79,
    }
