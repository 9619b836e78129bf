#!/usr/bin/env bash
# Creates the self-contained environment: .venv with pinned ROS 2 Kilted wheels, torch
# (CPU), onnx/onnxruntime, rosbags, test tools; fixes the wheels' CMake exports; builds
# the package with colcon into build/ install/ log/. Idempotent: safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}
VENV=$ROOT/.venv

need_install=1
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.requirements.sha" ] && \
   [ "$(cat "$VENV/.requirements.sha")" = "$(sha256sum requirements.txt | cut -d' ' -f1)" ]; then
  need_install=0
fi

if [ $need_install = 1 ]; then
  echo "== creating $VENV"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -r requirements.txt
  sha256sum requirements.txt | cut -d' ' -f1 > "$VENV/.requirements.sha"
fi

# The wheels' exported CMake files name include dirs of the machine they were built
# on (/opt/python/cp311-cp311/...); point them at this venv's Python and numpy.
PYINC=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
# CMake refuses to export include dirs that lie inside the source tree (.venv is in
# it), so numpy's headers are reached through a link outside the repository.
NPINC_REAL=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
LINKDIR=${XDG_CACHE_HOME:-$HOME/.cache}/seg_perception/$(echo -n "$ROOT" | sha256sum | cut -c1-12)
mkdir -p "$LINKDIR"
ln -sfn "$NPINC_REAL" "$LINKDIR/numpy-include"
NPINC=$LINKDIR/numpy-include
for f in $(grep -l -e "/opt/python/" -e "$NPINC_REAL" "$VENV"/share/*/cmake/*.cmake 2>/dev/null || true); do
  sed -i -E -e "s#/opt/python/[^/;\"]+/lib/python3\.[0-9]+/site-packages/numpy/_core/include#${NPINC}#g" \
    -e "s#/opt/python/[^/;\"]+/include/python3\.[0-9]+#${PYINC}#g" -e "s#${NPINC_REAL}#${NPINC}#g" "$f"
done

echo "== colcon build"
mkdir -p log
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export CMAKE_PREFIX_PATH="$VENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export AMENT_PREFIX_PATH="$VENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
colcon build --symlink-install --base-paths "$ROOT" \
  --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_NumPy_INCLUDE_DIR="$NPINC" -DBUILD_TESTING=OFF \
  --event-handlers console_direct- > log/colcon_build.txt 2>&1 || { tail -50 log/colcon_build.txt; exit 1; }
# vision_msgs/LabelInfo (for ~/label_info) has no wheel: build the vendored field-for-field copy,
# in this environment only and only when no real vision_msgs is importable.
if ! "$VENV/bin/python" -c "import vision_msgs.msg" >/dev/null 2>&1; then
  VM_SRC="$ROOT/build/vision_msgs_src"  # under build/ (COLCON_IGNORE): never discovered by the main build
  rm -rf "$VM_SRC" && mkdir -p "$VM_SRC/msg"
  cp "$ROOT/scripts/selfcontained/vision_msgs/package.xml.in" "$VM_SRC/package.xml"
  cp "$ROOT/scripts/selfcontained/vision_msgs/CMakeLists.txt.in" "$VM_SRC/CMakeLists.txt"
  cp "$ROOT/scripts/selfcontained/vision_msgs/msg/"*.msg "$VM_SRC/msg/"
  colcon build --base-paths "$VM_SRC" \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DPython3_NumPy_INCLUDE_DIR="$NPINC" -DBUILD_TESTING=OFF \
    --event-handlers console_direct- > log/colcon_vision_msgs.txt 2>&1 \
    || { tail -30 log/colcon_vision_msgs.txt; echo "warning: vision_msgs copy not built; ~/label_info is disabled"; }
fi
# The query text encoder on ONNX Runtime (keeps torch out of the node); cached, idempotent.
(cd "$ROOT" && "$VENV/bin/python" -m seg_perception.query.text_encoder_onnx > log/text_encoder.txt 2>&1) \
  || echo "warning: text encoder export failed (log/text_encoder.txt); the node exports it at first use"
echo "== fetch detector model (Objectron SSD, pinned npm package, sha256-checked, cached outside the repo)"
if command -v npm >/dev/null 2>&1; then
  "$VENV/bin/python" -m seg_perception.cli fetch-models || echo "WARNING: detector fetch failed; queries for cup/bottle/... will say so. Retry: seg-perception fetch-models"
else
  echo "NOTE: npm not found; detector not installed (queries for cup/bottle/... will say so). Install npm, then: seg-perception fetch-models"
fi
touch "$VENV/.setup-done"
echo "== environment ready: source scripts/env.sh"
