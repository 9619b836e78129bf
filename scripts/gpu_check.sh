#!/usr/bin/env bash
# One prepared check for a machine with an NVIDIA GPU (Jetson Orin, desktop RTX, data-centre card).
#
#   scripts/gpu_check.sh [--quick]
#
# 1. prints the GPU, driver, CUDA, TensorRT, torch and ONNX Runtime versions it finds;
# 2. runs the GPU tests (test/test_tensorrt_gpu.py and the CUDA cases in test/backends/)
#    plus the CPU unit tests of the backends, showing skip reasons;
# 3. runs scripts/bench_gpu.py: TensorRT fp16 (10.x: FP16 flag; 11.x: the fp16 ONNX, strongly
#    typed) and int8 (10.x: calibrator from CamVid train frames when present; 11.x: the shipped
#    TensorRT Q/DQ flavour models/camvid_int8_trt.onnx, symmetric int8, checked by
#    quant_recipe.tensorrt_qdq_problems), torch CUDA fp32/fp16/graphs, ONNX Runtime CUDA, with the ONNX Runtime CPU
#    baseline measured in the same run, as a table.
#
# --quick: fewer benchmark runs. Python: $PYTHON, else .venv/bin/python, else python3.
# Exit status: the pytest status (0 = all passed or cleanly skipped); the benchmark is informational.
# Results are also written to $OUT (or ./gpu_check_out): pytest log, bench table and JSON.

set -u
cd "$(dirname "$0")/.."

if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
OUTDIR="${OUT:-gpu_check_out}"
mkdir -p "$OUTDIR"
RUNS=200
[[ "${1:-}" == "--quick" ]] && RUNS=30

echo "== environment"
echo "python: $("$PY" --version 2>&1) ($PY)"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>/dev/null || nvidia-smi -L
elif [[ -f /etc/nv_tegra_release ]]; then
    echo "Jetson: $(head -n1 /etc/nv_tegra_release)"
else
    echo "nvidia-smi not found"
fi
"$PY" - <<'EOF'
def v(mod, attr="__version__"):
    try:
        m = __import__(mod)
        return str(getattr(m, attr, "?"))
    except Exception as err:  # report, don't stop
        return f"not available ({type(err).__name__}: {err})"
print("tensorrt:", v("tensorrt"))
_t = v("tensorrt")
if _t[:1].isdigit():
    print("tensorrt precision path:", "strongly typed (fp16 = fp16 ONNX, int8 = TensorRT Q/DQ model NAME_int8_trt.onnx)" if int(_t.split(".")[0]) >= 11
          else "builder flags (fp16 flag, int8 calibrator)")
print("torch:", v("torch"))
try:
    import torch
    print("torch CUDA:", torch.version.cuda, "| available:", torch.cuda.is_available(),
          "|", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
except Exception as err:
    print("torch CUDA: -", err)
print("onnxruntime:", v("onnxruntime"))
try:
    import onnxruntime
    print("onnxruntime providers:", onnxruntime.get_available_providers())
except Exception:
    pass
print("onnx:", v("onnx"))
EOF

echo
echo "== tests (GPU + backend unit tests)"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m pytest -q --import-mode=importlib -rs -s \
    -p no:cacheprovider test/test_tensorrt_gpu.py test/backends 2>&1 | tee "$OUTDIR/pytest.log"
TEST_STATUS=${PIPESTATUS[0]}

echo
echo "== benchmark (median ms; ORT CPU baseline measured in the same run)"
CALIB_ARGS=()
for d in "${SEG_PERCEPTION_CAMVID:-}/train" ../shared/datasets/camvid/train; do
    [[ -d "$d" ]] && { CALIB_ARGS=(--calib "$d"); break; }
done
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" scripts/bench_gpu.py --runs "$RUNS" --warmup 20 --cpu-runs 20 "${CALIB_ARGS[@]}" \
    --engine-cache "$OUTDIR/engines" --json "$OUTDIR/bench.json" 2>"$OUTDIR/bench.stderr" | tee "$OUTDIR/bench.txt"
BENCH_STATUS=${PIPESTATUS[0]}
if [[ $BENCH_STATUS -ne 0 ]]; then
    echo "benchmark failed (status $BENCH_STATUS):"
    tail -n 20 "$OUTDIR/bench.stderr"
fi
rm -rf "$OUTDIR/engines"  # engines are large and machine-specific; keep only the figures

echo
echo "== summary: tests exit $TEST_STATUS, benchmark exit $BENCH_STATUS (logs in $OUTDIR)"
exit "$TEST_STATUS"
