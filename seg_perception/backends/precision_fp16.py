"""fp32 ONNX -> fp16 ONNX (fp32 inputs and outputs kept), verified against fp32 and cached.

The conversion is ``onnxconverter_common.float16`` with ``keep_io_types=True``, so the
pipeline feeds and reads float32 as for the fp32 model. Where it runs: docs/deploying.md.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from seg_perception.backends.calibration import list_calibration_images
from seg_perception.backends.engine_cache import model_fingerprint
from seg_perception.backends.precision import (
    DEFAULT_VERIFY_IMAGES,
    card_path,
    from_cache,
    precision_cache_dir,
    store,
    verify_against,
)
from seg_perception.backends.quant_recipe import optimize_basic
from seg_perception.errors import BackendUnavailable, ModelError
from seg_perception.model_spec import ModelSpec

LOG = logging.getLogger(__name__)

#: Bump when the fp16 conversion changes, so cached results miss.
FP16_RECIPE_VERSION = 2
FP16_RECIPE = "ORT basic graph optimization, then onnxconverter_common.float16 (keep_io_types: fp32 in/out)"


def _convert(src: Path, dst: Path) -> None:
    try:
        import onnx
        from onnxconverter_common import float16
    except ImportError as err:
        raise BackendUnavailable(
            f"fp16 conversion needs onnxconverter-common (pinned in requirements.txt): {err}"
        ) from err
    with tempfile.TemporaryDirectory(prefix="seg_fp16_") as tmp:
        prepared = optimize_basic(src, Path(tmp) / "prepared.onnx")
        try:
            model = float16.convert_float_to_float16(onnx.load(str(prepared)), keep_io_types=True)
            onnx.save(_float_outputs(model), str(dst))
        except Exception as err:
            raise ModelError(f"cannot convert {src.name} to fp16: {err}") from err


def _float_outputs(model: Any) -> Any:
    """Make every fp16 graph output float32 again.

    ``keep_io_types`` misses an output produced by a blocked op (e.g. a final Resize, which
    the converter runs in fp32 and then casts to fp16): the last Cast is retargeted to
    float32, any other producer gets a Cast appended.
    """
    from onnx import TensorProto, helper

    producers = {o: n for n in model.graph.node for o in n.output}
    for out in model.graph.output:
        if out.type.tensor_type.elem_type != TensorProto.FLOAT16:
            continue
        node = producers.get(out.name)
        if node is not None and node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to":
                    attr.i = TensorProto.FLOAT
        else:
            half = out.name + "_fp16"
            for n in model.graph.node:
                n.output[:] = [half if o == out.name else o for o in n.output]
                n.input[:] = [half if i == out.name else i for i in n.input]
            model.graph.node.append(helper.make_node("Cast", [half], [out.name], to=TensorProto.FLOAT))
        out.type.tensor_type.elem_type = TensorProto.FLOAT
    return model


def convert_fp16(
    model: str | Path,
    out: str | Path,
    verify_dir: str | Path | None = None,
    verify_images: int = DEFAULT_VERIFY_IMAGES,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """Write an fp16 copy of ``model`` to ``out`` (+ metadata YAML and model card).

    With ``verify_dir`` (e.g. the val split, never test), labels and logits are compared
    with the fp32 model on ``verify_images`` frames. Returns the card as a dict.
    """
    src, dst = Path(model), Path(out)
    spec = ModelSpec.for_model(src)
    key = hashlib.sha256(f"fp16:{FP16_RECIPE_VERSION}:{model_fingerprint(src)}".encode()).hexdigest()[:20]
    cached = (Path(cache_dir) if cache_dir else precision_cache_dir()) / f"{src.stem}_fp16_{key}.onnx"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if use_cache and (card := from_cache(cached, dst, src)) is not None:
        if card.get("verification") or not verify_dir:
            return card
    t0 = time.perf_counter()
    _convert(src, dst)
    seconds = time.perf_counter() - t0
    paths = list_calibration_images(verify_dir, max_images=verify_images) if verify_dir and verify_images > 0 else []
    ver = verify_against(src, dst, paths, spec) if paths else None
    report: dict[str, Any] = {
        "source_sha256": model_fingerprint(src),
        "recipe": FP16_RECIPE,
        "recipe_version": FP16_RECIPE_VERSION,
        "io_dtype": "float32",
        "verification_folder": str(Path(verify_dir)) if verify_dir else None,
        "convert_seconds": round(seconds, 2),
        "verification": asdict(ver) if ver else None,
        "cached": False,
    }
    LOG.info("fp16 model %s written in %.1f s; %s", dst, seconds, ver)
    return store(dst, src, "fp16", report, cached if use_cache else None)


def fp16_model_for(model: str | Path) -> Path:
    """The fp16 ONNX for fp32 ``model``: a sibling ``NAME_fp16.onnx`` made from it, or one converted into the cache.

    For consumers that build from an fp16 ONNX (TensorRT 11, strongly typed). Needs no images.
    """
    src = Path(model)
    sibling = src.with_name(src.stem + "_fp16.onnx")
    if sibling.exists() and card_path(sibling).exists():
        card = yaml.safe_load(card_path(sibling).read_text()) or {}
        if card.get("source_sha256") == model_fingerprint(src):
            return sibling
        LOG.warning("%s was made from another version of %s; not using it", sibling, src.name)
    out = precision_cache_dir() / f"{src.stem}_fp16_auto.onnx"
    convert_fp16(src, out)
    return out
