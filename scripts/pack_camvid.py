#!/usr/bin/env python3
"""Pack CamVid train+val and the synthetic training scenes into a compact folder for a GPU machine.

The device tool carries at most 64 MiB per call, so images are re-encoded as JPEG and labels
as PNG (lossless). The pack keeps the CamVid layout (``train/``, ``trainannot/``, ``train.txt``
...) so ``seg-perception train`` reads it unchanged, and writes synthetic scenes as
``synth_cache/street_<seed>_<H>x<W>.jpg`` + ``_labels.png``, which the training loader reads
where no ``.npz`` cache exists. The test split is never packed. Never commit the output.

    python scripts/pack_camvid.py --data ../shared/datasets/camvid --out gpu_pack
    # then, on the GPU machine (see config/train_camvid_gpu.yaml):
    python3 -m seg_perception.training.train --config config/train_camvid_gpu.yaml --run-dir $OUT
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, img, quality: int) -> None:
    import cv2

    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if not cv2.imwrite(str(path), img, params):
        raise OSError(f"cannot write {path}")


def pack(data: Path, out: Path, splits: list[str], synth_seeds: list[range], quality: int,
         height: int = 360, width: int = 480) -> int:
    """Write the pack; returns its size in bytes."""
    from tqdm import tqdm

    from seg_perception.training.data import load_camvid_split, load_synthetic

    if "test" in splits:
        raise SystemExit("the test split is never packed for training")
    for split in splits:
        arrays = load_camvid_split(data, split)
        (out / split).mkdir(parents=True, exist_ok=True)
        (out / f"{split}annot").mkdir(exist_ok=True)
        lines = []
        for name, rgb, lab in tqdm(list(zip(arrays.names, arrays.images, arrays.labels, strict=True)),
                                   desc=f"pack {split}", unit="img"):
            stem = Path(name).stem
            _write(out / split / f"{stem}.jpg", rgb[..., ::-1], quality)
            _write(out / f"{split}annot" / f"{stem}.png", lab, quality)
            lines.append(f"{split}/{stem}.jpg {split}annot/{stem}.png")
        (out / f"{split}.txt").write_text("\n".join(lines) + "\n")
    cache = out / "synth_cache"
    cache.mkdir(parents=True, exist_ok=True)
    for seeds in synth_seeds:
        # Rendered (or read from the local npz cache) one at a time to bound memory.
        for seed in tqdm(seeds, desc=f"pack synthetic {seeds.start}-{seeds.stop - 1}", unit="scene"):
            scene = load_synthetic([seed], ROOT / "runs" / "synth_cache", height, width)
            stem = f"street_{seed}_{height}x{width}"
            _write(cache / f"{stem}.jpg", scene.images[0][..., ::-1], quality)
            _write(cache / f"{stem}_labels.png", scene.labels[0], quality)
    return sum(p.stat().st_size for p in out.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "datasets" / "camvid")
    ap.add_argument("--out", type=Path, default=ROOT / "gpu_pack")
    ap.add_argument("--splits", nargs="+", default=["train", "val"])
    ap.add_argument("--synthetic-train", type=int, nargs=2, default=[0, 300], metavar=("FIRST", "STOP"))
    ap.add_argument("--synthetic-val", type=int, nargs=2, default=[10000, 10100], metavar=("FIRST", "STOP"))
    ap.add_argument("--quality", type=int, default=90, help="JPEG quality of the images (labels are PNG)")
    args = ap.parse_args(argv)
    size = pack(args.data, args.out, args.splits,
                [range(*args.synthetic_train), range(*args.synthetic_val)], args.quality)
    print(f"{args.out}: {size / 2**20:.1f} MiB (device limit: 64 MiB per call)")
    return 0 if size < 64 * 2**20 else 1


if __name__ == "__main__":
    sys.exit(main())
