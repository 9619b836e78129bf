"""Export trained segmentation models to ONNX + a YAML model card, and verify them.

* :func:`export_checkpoint` - CtxSegNet / LiteSegNet checkpoint (``final_ema.pt`` or ``last.pt``;
  the EMA weights are used) -> ONNX (opset 17, dynamic batch/H/W) + YAML.
* :func:`export_segformer` - Hugging Face SegFormer checkpoint directory -> ONNX
  (``torch.onnx.export(..., dynamo=True)``; logits upsampled to the input size
  inside the graph) + YAML.
* :func:`verify_onnx` - ONNX Runtime vs torch on given images: max |logit diff|
  and argmax label agreement.

ONNX contract (both exporters): input ``input`` float32 N x 3 x H x W, RGB,
normalised ``(x / 255 - mean) / std``; output ``logits`` float32 N x K x H x W.
H and W must be multiples of ``size_divisor`` (written to the YAML).

CLI: ``python -m seg_perception.training.export --checkpoint runs/camvid_ctxseg/final_ema.pt
--config config/train_camvid.yaml --out models/camvid.onnx`` (verification images
come from the CamVid ``val`` split; never ``test``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import yaml
from torch import nn

from seg_perception.errors import ModelError
from seg_perception.nets.build import count_parameters
from seg_perception.nets.checkpoint import load_checkpoint_model
from seg_perception.training.config import load_config, resolve_path
from seg_perception.training.data import CAMVID_CLASSES, IGNORE_INDEX, load_camvid_split, to_tensor_batch

__all__ = [
    "CAMVID_COLORS",
    "export_checkpoint",
    "export_segformer",
    "verify_onnx",
    "camvid_model_card",
    "main",
]

from seg_perception.camvid import CAMVID_COLORS

DRIVABLE_CLASSES = ["road"]
OBSTACLE_CLASSES = ["building", "pole", "tree", "sign_symbol", "fence", "car", "pedestrian", "bicyclist"]


def camvid_model_card(
    name: str,
    mean: Sequence[float],
    std: Sequence[float],
    size_divisor: int = 8,
    input_size: Sequence[int] = (360, 480),
    extra: dict | None = None,
) -> dict:
    """YAML model card for an 11-class CamVid model (keys read by the ROS node)."""
    card = {
        "name": name,
        "class_names": list(CAMVID_CLASSES),
        "colors": [list(c) for c in CAMVID_COLORS],
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "input_size": [int(input_size[0]), int(input_size[1])],
        "size_divisor": int(size_divisor),
        "layout": "NCHW",
        "channel_order": "RGB",
        "resize": "resize",
        "ignore_index": IGNORE_INDEX,
        "drivable_classes": list(DRIVABLE_CLASSES),
        "obstacle_classes": list(OBSTACLE_CLASSES),
        "output": "logits",
    }
    if extra:
        card.update(extra)
    return card


def _onnx_session(path: str | Path, threads: int = 2):
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise ModelError("onnxruntime is required to verify an ONNX export") from exc
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


@torch.no_grad()
def verify_onnx(
    onnx_path: str | Path,
    model: nn.Module,
    images: Sequence[np.ndarray],
    mean: Sequence[float],
    std: Sequence[float],
    verbose: bool = True,
) -> dict:
    """Compare ONNX Runtime with torch on uint8 H x W x 3 RGB images (one at a time).

    Returns ``{"max_abs_diff": float, "label_agreement": float (0..1), "n_images": int}``.
    """
    sess = _onnx_session(onnx_path)
    in_name = sess.get_inputs()[0].name
    max_diff, agree, total = 0.0, 0, 0
    for img in images:
        x, _ = to_tensor_batch([img], None, mean, std)
        ref = model(x)
        if isinstance(ref, dict) or hasattr(ref, "logits"):
            ref = ref["logits"] if isinstance(ref, dict) else ref.logits
        ref = ref.numpy()
        out = sess.run(None, {in_name: x.numpy()})[0]
        if out.shape != ref.shape:
            raise ModelError(f"ONNX output shape {out.shape} != torch {ref.shape}")
        max_diff = max(max_diff, float(np.abs(out - ref).max()))
        agree += int((out.argmax(1) == ref.argmax(1)).sum())
        total += int(np.prod(ref.shape[:1] + ref.shape[2:]))
    res = {"max_abs_diff": max_diff, "label_agreement": agree / max(total, 1), "n_images": len(images)}
    if verbose:
        print(
            f"[verify] {onnx_path}: max |logit diff| {res['max_abs_diff']:.3e}, "
            f"label agreement {100 * res['label_agreement']:.4f}% over {len(images)} images",
            flush=True,
        )
    return res


def _write_yaml(path: Path, card: dict) -> None:
    """Write the model YAML: ModelSpec's keys at the top, provenance (architecture, epochs, metrics, ...)
    under ``training:`` so ModelSpec's unknown-key check still catches typos."""
    from seg_perception.model_spec import ModelSpec

    spec_keys = set(ModelSpec.__dataclass_fields__) | {"layout", "training", "metrics", "notes", "source"}
    top = {k: v for k, v in card.items() if k in spec_keys}
    info = {k: v for k, v in card.items() if k not in spec_keys}
    if info:
        top["training"] = {**(top.get("training") or {}), **info}
    ModelSpec.from_dict(top)  # never write metadata the pipeline would refuse
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(top, sort_keys=False, default_flow_style=None))


def export_checkpoint(
    ckpt: str | Path,
    out_onnx: str | Path = "models/camvid.onnx",
    out_yaml: str | Path = "models/camvid.yaml",
    config: dict | str | Path | None = None,
    verify_images: Sequence[np.ndarray] | None = None,
    name: str | None = None,
    opset: int = 17,
    extra: dict | None = None,
) -> dict:
    """Export a CtxSegNet checkpoint (EMA weights) to ONNX + YAML and verify it.

    ``config``: training config dict or YAML path (for model/data settings missing
    from the checkpoint). ``verify_images``: uint8 H x W x 3 RGB images (H, W
    multiples of 8) for the ONNX-vs-torch check; default: one 360 x 480 noise image.
    Returns the verification result merged with the written YAML card.
    """
    if isinstance(config, (str, Path)):
        config = load_config(config)
    config = config or {}
    model, info = load_checkpoint_model(ckpt, config)
    data_cfg = config.get("data", {})
    size_divisor = int(data_cfg.get("size_divisor", 8))
    input_size = data_cfg.get("input_size", [360, 480])
    out_onnx, out_yaml = Path(out_onnx), Path(out_yaml)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 3, int(input_size[0]), int(input_size[1]))
    # TorchScript-based exporter: native opset 17, dynamic N/H/W; the dynamo exporter
    # emits opset 18 and its down-conversion of ReduceMean fails for this graph.
    torch.onnx.export(
        model,
        (dummy,),
        str(out_onnx),
        dynamo=False,
        opset_version=opset,
        input_names=["input"],
        output_names=["logits"],
        do_constant_folding=True,
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}},
    )
    if verify_images is None:
        rng = np.random.default_rng(0)
        verify_images = [rng.integers(0, 256, (int(input_size[0]), int(input_size[1]), 3), dtype=np.uint8)]
    res = verify_onnx(out_onnx, model, verify_images, info["mean"], info["std"])
    card = camvid_model_card(
        name or config.get("name", "camvid_ctxseg"),
        info["mean"],
        info["std"],
        size_divisor,
        input_size,
        extra={
            "architecture": str(info["model_config"].get("name", "CtxSegNet")),
            "params": count_parameters(model),
            "opset": opset,
            "trained_on": (config.get("data") or {}).get("train_splits"),
            "epochs": info.get("epoch"),
            **(extra or {}),
        },
    )
    _write_yaml(out_yaml, card)
    return {**res, "card": card, "onnx": str(out_onnx), "yaml": str(out_yaml)}


class _SegformerWrapper(nn.Module):
    """SegFormer forward returning logits N x K x H x W at input resolution (bilinear)."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.m = hf_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.m(pixel_values=x).logits  # N x K x H/4 x W/4
        return nn.functional.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)


def export_segformer(
    checkpoint_dir: str | Path,
    out_onnx: str | Path,
    out_yaml: str | Path,
    input_size: Sequence[int] = (360, 480),
    verify_images: Sequence[np.ndarray] | None = None,
    opset: int = 18,
    name: str | None = None,
) -> dict:
    """Export a Hugging Face SegFormer (``SegformerForSemanticSegmentation`` directory) to ONNX.

    Uses ``torch.onnx.export(..., dynamo=True)`` with dynamic N/H/W (H, W multiples
    of 32). mean/std come from ``preprocessor_config.json`` when present (else
    ImageNet); class names from ``config.id2label``. If the model has the 11 CamVid
    classes the CamVid palette/driveable/obstacle lists are written, else generic ones.
    """
    try:
        from transformers import SegformerForSemanticSegmentation
    except ImportError as exc:
        raise ModelError("transformers is required for SegFormer export") from exc
    ckdir = Path(checkpoint_dir)
    if not ckdir.is_dir():
        raise ModelError(f"SegFormer checkpoint directory not found: {ckdir}")
    try:
        hf = SegformerForSemanticSegmentation.from_pretrained(str(ckdir))
    except Exception as exc:
        raise ModelError(f"cannot load SegFormer from {ckdir}: {exc}") from exc
    hf.eval()
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    pp = ckdir / "preprocessor_config.json"
    if pp.is_file():
        pcfg = json.loads(pp.read_text())
        mean = [float(v) for v in pcfg.get("image_mean", mean)]
        std = [float(v) for v in pcfg.get("image_std", std)]
    id2label = {int(k): v for k, v in (hf.config.id2label or {}).items()}
    k = int(hf.config.num_labels)
    names = [str(id2label.get(i, f"class_{i}")) for i in range(k)]
    wrapper = _SegformerWrapper(hf).eval()
    h, w = int(input_size[0]), int(input_size[1])
    divisor = 32
    dummy = torch.zeros(1, 3, (h // divisor) * divisor or divisor, (w // divisor) * divisor or divisor)
    out_onnx, out_yaml = Path(out_onnx), Path(out_yaml)
    out_onnx.parent.mkdir(parents=True, exist_ok=True)
    dims = {
        0: torch.export.Dim("batch", min=1, max=64),
        2: divisor * torch.export.Dim("h32", min=1, max=128),
        3: divisor * torch.export.Dim("w32", min=1, max=128),
    }
    prog = torch.onnx.export(
        wrapper,
        (dummy,),
        None,
        dynamo=True,
        opset_version=opset,
        input_names=["input"],
        output_names=["logits"],
        dynamic_shapes={"x": dims},
        external_data=False,
    )
    if prog is None:
        raise ModelError("torch.onnx.export returned no program")
    prog.save(str(out_onnx), external_data=False)
    if verify_images is None:
        rng = np.random.default_rng(0)
        verify_images = [rng.integers(0, 256, (dummy.shape[2], dummy.shape[3], 3), dtype=np.uint8)]
    res = verify_onnx(out_onnx, wrapper, verify_images, mean, std)
    if k == len(CAMVID_CLASSES):
        card = camvid_model_card(name or ckdir.name, mean, std, divisor, (h, w))
        card["class_names"] = names if any(not n.startswith("LABEL_") for n in names) else list(CAMVID_CLASSES)
    else:
        rng = np.random.default_rng(1)
        card = camvid_model_card(name or ckdir.name, mean, std, divisor, (h, w))
        card.update(
            class_names=names,
            colors=[[int(c) for c in rng.integers(0, 256, 3)] for _ in range(k)],
            drivable_classes=[n for n in names if n in ("road",)],
            obstacle_classes=[n for n in names if n in OBSTACLE_CLASSES],
        )
    card.update(architecture="SegFormer", opset=opset)
    _write_yaml(out_yaml, card)
    return {**res, "card": card, "onnx": str(out_onnx), "yaml": str(out_yaml)}


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: export a CtxSegNet checkpoint (verification on CamVid val images)."""
    ap = argparse.ArgumentParser(prog="seg-perception export")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--config", default="config/train_camvid.yaml")
    ap.add_argument("--out", default="models/camvid.onnx")
    ap.add_argument("--yaml", default=None)
    ap.add_argument("--verify-n", type=int, default=8, help="number of val images for verification")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    val = load_camvid_split(resolve_path(cfg["data"]["root"], cfg), "val")
    step = max(1, len(val) // max(1, args.verify_n))
    imgs = val.images[::step][: args.verify_n]
    out_yaml = args.yaml or str(Path(args.out).with_suffix(".yaml"))
    extra: dict = {}
    metrics = Path(args.checkpoint).with_name("final_metrics.json")
    if metrics.is_file():
        m = json.loads(metrics.read_text())
        extra = {"val_miou_fit_indicator": m.get("val_miou"), "synthetic_val_miou": m.get("synthetic_val_miou")}
    extra["config"] = str(args.config)
    if cfg["train"].get("init_checkpoint"):  # stage 2 of a warm restart: name where it started
        extra["warm_start_from"] = str(cfg["train"]["init_checkpoint"])
    res = export_checkpoint(args.checkpoint, args.out, out_yaml, cfg, verify_images=imgs, extra=extra)
    print(json.dumps({k: v for k, v in res.items() if k != "card"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
