"""Precision as a model transformation: an fp32 ONNX -> an INT8 Q/DQ ONNX, verified and cached.

``quantize_int8`` runs ONNX Runtime's static quantizer on frames pre-processed as at run
time, checks the result against the fp32 model and writes a model card beside it. The
recipe, the checks and the cache layout: docs/deploying.md.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seg_perception.backends.calibration import list_calibration_images, load_rgb, make_preprocess
from seg_perception.backends.engine_cache import default_cache_dir, model_fingerprint
from seg_perception.backends.int8_rewrite import rewrite_file
from seg_perception.backends.preprocess import round_up
from seg_perception.backends.quant_recipe import (
    image_convs,
    image_convs_to_keep_float,
    image_pads_after_quantize,
    ops_to_quantize,
    optimize_basic,
    qdq_census,
    shapes_read_quantized,
    tensorrt_qdq_problems,
)
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError
from seg_perception.model_spec import ModelSpec

LOG = logging.getLogger(__name__)

#: Calibration frames: 30 CamVid train frames gave 99.5 % label agreement (issue 21).
DEFAULT_CALIB_IMAGES = 30
DEFAULT_VERIFY_IMAGES = 10
#: Bump when the quantization recipe changes, so cached results miss.
RECIPE_VERSION = 6
#: Who runs the Q/DQ model, and the recipe for it (docs/deploying.md, "INT8 recipe").
RECIPES = {
    "onnxruntime": (
        "ORT basic graph optimization; exact rewrites for MLAS's int8 kernels (summed depthwise pairs merged, "
        "depthwise groups padded to 16, the quantized image conv's input padded to 4 channels, convs with "
        "fewer than 16 outputs widened and sliced); onnxruntime quantize_static QDQ: per-channel symmetric "
        "int8 weights, uint8 activations, MinMax, no reduce_range; Resize, Pad and the image-fed convolution "
        "left float unless it feeds a MaxPool; Shape nodes read the quantized tensors; the image padded after "
        "its QuantizeLinear"
    ),
    "tensorrt": (
        "ORT basic graph optimization; onnxruntime quantize_static QDQ for TensorRT's parser: per-channel "
        "symmetric int8 weights, symmetric int8 activations (zero points 0), float biases, MinMax; Resize, "
        "Pad and the image-fed convolution left float"
    ),
}
INT8_TARGETS = tuple(RECIPES)
RECIPE = RECIPES["onnxruntime"]
#: File name suffix of each target's INT8 sibling (``camvid_int8.onnx``, ``camvid_int8_trt.onnx``).
SIBLING_SUFFIX = {"onnxruntime": "_int8", "tensorrt": "_int8_trt"}


@dataclass(frozen=True)
class Verification:
    """fp32 vs converted model on ``images`` frames.

    Attributes:
        images: number of frames compared.
        label_agreement: fraction (0..1) of pixels whose arg-max class is the same.
        max_logit_diff: largest |logit difference| over all pixels and classes.
        mean_logit_diff: mean |logit difference|.
    """

    images: int
    label_agreement: float
    max_logit_diff: float
    mean_logit_diff: float


def precision_cache_dir() -> Path:
    """Folder of cached converted models: beside the engine cache (``.../seg_perception/precision``)."""
    return default_cache_dir().parent / "precision"


def card_path(model_path: str | Path) -> Path:
    """The model card written beside a converted model: ``NAME.card.yaml``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".card.yaml")


def stored_precision(model_path: str | Path) -> str | None:
    """The precision a converted model's card records ("int8", "fp16"), or None without a readable card.

    Lets a backend that loads ``camvid_int8.onnx`` as stored report int8 rather than the
    fp32 it was asked to run.
    """
    path = card_path(model_path)
    try:
        card = yaml.safe_load(path.read_text()) if path.exists() else None
    except (OSError, yaml.YAMLError):
        return None
    value = card.get("precision") if isinstance(card, dict) else None
    return str(value) if value else None


def _net_hw(spec: ModelSpec) -> tuple[int, int]:
    if spec.input_size is None:
        raise ModelError("quantization needs the model's input_size in its metadata YAML (calibration shape)")
    d = max(1, int(spec.size_divisor))
    return round_up(spec.input_size[0], d), round_up(spec.input_size[1], d)


def split_images(folder: str | Path, calib: int, verify: int) -> tuple[list[Path], list[Path]]:
    """(calibration frames, verification frames) from ``folder``: evenly spread, disjoint."""
    paths = list_calibration_images(folder, max_images=10**9)
    calib_paths = list_calibration_images(folder, max_images=calib)
    rest = [p for p in paths if p not in set(calib_paths)]
    if rest and verify > 0:
        idx = np.unique(np.linspace(0, len(rest) - 1, min(verify, len(rest))).round().astype(int))
        rest = [rest[i] for i in idx]
    return calib_paths, rest[:verify] if verify > 0 else []


def _tensors(paths: Sequence[Path], spec: ModelSpec) -> Iterator[np.ndarray]:
    pre = make_preprocess(spec, _net_hw(spec))
    for p in paths:
        yield pre(load_rgb(p))


def _session(model: Path, threads: int = 2) -> Any:
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise BackendUnavailable(f"onnxruntime is not installed: {err}") from err
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise ModelError(f"cannot load ONNX model {model}: {err}") from err


def verify_against(reference: Path, candidate: Path, paths: Sequence[Path], spec: ModelSpec) -> Verification:
    """Compare ``candidate`` with the fp32 ``reference`` model on ``paths`` (ONNX Runtime CPU)."""
    ref, cand = _session(reference), _session(candidate)
    name = ref.get_inputs()[0].name
    agree = total = 0
    max_diff, sum_diff, count = 0.0, 0.0, 0
    for x in _tensors(paths, spec):
        a = ref.run(None, {name: x})[0].astype(np.float32)
        b = cand.run(None, {cand.get_inputs()[0].name: x})[0].astype(np.float32)
        d = np.abs(a - b)
        max_diff = max(max_diff, float(d.max()))
        sum_diff += float(d.sum())
        count += d.size
        agree += int((a.argmax(1) == b.argmax(1)).sum())
        total += a.shape[0] * a.shape[2] * a.shape[3]
    if total == 0:
        raise ConfigError("no verification images: the folder has no frames beyond the calibration ones")
    return Verification(len(paths), agree / total, max_diff, sum_diff / max(count, 1))


class _Reader:
    """``onnxruntime.quantization.CalibrationDataReader`` over pre-processed frames."""

    def __init__(self, input_name: str, paths: Sequence[Path], spec: ModelSpec) -> None:
        self._it = ({input_name: x} for x in _tensors(paths, spec))

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - not used by the MinMax calibrator
        raise NotImplementedError


def _cache_key(model: Path, calib_paths: Sequence[Path], kind: str) -> str:
    h = hashlib.sha256(f"{kind}:{RECIPE_VERSION}:{model_fingerprint(model)}".encode())
    for p in calib_paths:
        h.update(f"{p.name}:{p.stat().st_size};".encode())
    return h.hexdigest()[:20]


def _write_card(out: Path, source: Path, kind: str, report: dict[str, Any]) -> Path:
    card = {"model": out.name, "source_model": source.name, "precision": kind, **report}
    path = card_path(out)
    path.write_text(yaml.safe_dump(card, sort_keys=False))
    return path


def _copy_metadata(source: Path, out: Path) -> None:
    meta = source.with_suffix(".yaml")
    if meta.exists() and meta.resolve() != out.with_suffix(".yaml").resolve():
        shutil.copyfile(meta, out.with_suffix(".yaml"))


def from_cache(cached: Path, dst: Path, src: Path) -> dict[str, Any] | None:
    """Copy a cached converted model (+ card, metadata) to ``dst``; its card, or None on a miss."""
    if not (cached.exists() and card_path(cached).exists()):
        return None
    LOG.info("converted model from cache: %s", cached)
    if cached.resolve() != dst.resolve():
        shutil.copyfile(cached, dst)
    card = yaml.safe_load(card_path(cached).read_text())
    card.update(model=dst.name, cached=True)
    card_path(dst).write_text(yaml.safe_dump(card, sort_keys=False))
    _copy_metadata(src, dst)
    return card


def store(dst: Path, src: Path, kind: str, report: dict[str, Any], cached: Path | None) -> dict[str, Any]:
    """Write ``dst``'s metadata and card, copy both into the cache (``cached``); the card as a dict."""
    _copy_metadata(src, dst)
    _write_card(dst, src, kind, report)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dst, cached)
        _write_card(cached, src, kind, report)
    return {"model": dst.name, "source_model": src.name, "precision": kind, **report}


def quantize_int8(
    model: str | Path,
    calib_dir: str | Path,
    out: str | Path,
    calib_images: int = DEFAULT_CALIB_IMAGES,
    verify_images: int = DEFAULT_VERIFY_IMAGES,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    verify_dir: str | Path | None = None,
    keep_image_conv_float: bool | None = None,
    float_nodes: Sequence[str] = (),
    target: str = "onnxruntime",
) -> dict[str, Any]:
    """Write an INT8 Q/DQ copy of ``model`` to ``out`` (+ metadata YAML and model card).

    ``target``: ``onnxruntime`` (uint8 activations and the rewrites for ORT's CPU kernels) or
    ``tensorrt`` (symmetric int8 activations, float biases: what TensorRT's parser takes;
    checked by ``quant_recipe.tensorrt_qdq_problems``). Verification frames come from
    ``verify_dir`` (e.g. the val split) when given, else from ``calib_dir`` frames not used
    for calibration. ``keep_image_conv_float``: None (the recipe) leaves the convolution fed
    by the image float unless, on ``onnxruntime``, its output feeds a MaxPool; True always,
    False never (recipe 2's choice); ``float_nodes`` names more nodes to leave float
    (scripts/int8_sensitivity.py). Returns the card as a dict (``verification``: the fp32
    comparison, ``cached``: cache reused). Raises ModelError for a model without metadata,
    ConfigError for an empty calibration folder or an unknown target.
    """
    _check_target(target)
    src, dst = Path(model), Path(out)
    spec = ModelSpec.for_model(src)
    calib_paths, verify_paths = split_images(calib_dir, calib_images, 0 if verify_dir else verify_images)
    if verify_dir and verify_images > 0:
        verify_paths = list_calibration_images(verify_dir, max_images=verify_images)
    kind = {None: "int8", True: "int8-stem", False: "int8-all"}[keep_image_conv_float]
    kind += ("-trt" if target == "tensorrt" else "") + "".join(f"+{n}" for n in float_nodes)
    key = _cache_key(src, calib_paths, kind)
    cache = Path(cache_dir) if cache_dir else precision_cache_dir()
    cached = cache / f"{src.stem}{SIBLING_SUFFIX[target]}_{key}.onnx"
    dst.parent.mkdir(parents=True, exist_ok=True)
    if use_cache and (card := from_cache(cached, dst, src)) is not None:
        return card
    try:
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    except ImportError as err:
        raise BackendUnavailable(f"onnxruntime.quantization is not available: {err}") from err
    input_name = _session(src).get_inputs()[0].name
    for_ort = target == "onnxruntime"
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seg_quant_") as tmp:
        prepared = optimize_basic(src, Path(tmp) / "prepared.onnx")
        # The stem rule's MaxPool exception is about ORT's layouts; TensorRT picks its own.
        rule = image_convs_to_keep_float if for_ort else image_convs
        stem = {None: rule, True: image_convs}.get(keep_image_conv_float)
        left_float = (stem(prepared) if stem else []) + list(float_nodes)
        quantized_stems = [c for c in image_convs(prepared) if c not in left_float]
        rewrites = rewrite_file(prepared, quantized_stems).as_dict() if for_ort else {}
        op_types = ops_to_quantize(prepared)
        activations = QuantType.QUInt8 if for_ort else QuantType.QInt8
        options = {"WeightSymmetric": True, "ActivationSymmetric": not for_ort, "QuantizeBias": for_ort}
        try:
            quantize_static(
                str(prepared),
                str(dst),
                _Reader(input_name, calib_paths, spec),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=op_types,
                per_channel=True,
                reduce_range=False,
                weight_type=QuantType.QInt8,
                activation_type=activations,
                nodes_to_exclude=left_float,
                extra_options=options,
            )
        except (ValueError, RuntimeError) as err:
            raise ModelError(f"ONNX Runtime could not quantize {src.name}: {err}") from err
        if for_ort:
            rewrites["shapes_read_quantized"] = shapes_read_quantized(dst)
            rewrites["image_pads_after_quantize"] = image_pads_after_quantize(dst)
    seconds = time.perf_counter() - t0
    problems = tensorrt_qdq_problems(dst)
    if problems and not for_ort:
        raise ModelError(f"the TensorRT Q/DQ model of {src.name} breaks TensorRT's rules: {'; '.join(problems)}")
    ver = verify_against(src, dst, verify_paths, spec) if verify_paths else None
    report: dict[str, Any] = {
        "source_sha256": model_fingerprint(src),
        "target": target,
        "recipe": RECIPES[target],
        "recipe_version": RECIPE_VERSION,
        "quantized_op_types": op_types,
        "float_nodes": left_float,
        "rewrites": rewrites,
        "tensorrt_parser": "accepted by the static check" if not problems else problems,
        "graph": qdq_census(dst),
        "calibration_folder": str(Path(calib_dir)),
        "calibration_images": len(calib_paths),
        "verification_folder": str(Path(verify_dir)) if verify_dir else str(Path(calib_dir)),
        "input_hw": list(_net_hw(spec)),
        "quantize_seconds": round(seconds, 2),
        "verification": asdict(ver) if ver else None,
        "cached": False,
    }
    LOG.info("INT8 (%s) model %s written in %.1f s; %s", target, dst, seconds, ver)
    return store(dst, src, "int8", report, cached if use_cache else None)


def int8_model_for(model: str | Path, calib_dir: str | Path | None = None, target: str = "onnxruntime") -> Path:
    """The INT8 Q/DQ model of fp32 ``model`` for ``target``: a sibling beside it, or a cached one.

    The sibling is ``NAME_int8.onnx`` for ONNX Runtime and ``NAME_int8_trt.onnx`` for TensorRT;
    it is used as is when its card names ``model``'s hash and this target. Otherwise one is
    generated from ``calib_dir`` into the precision cache. ConfigError when neither exists;
    ModelError when the TensorRT model breaks TensorRT's Q/DQ rules.
    """
    _check_target(target)
    src = Path(model)
    sibling = src.with_name(src.stem + SIBLING_SUFFIX[target] + ".onnx")
    chosen: Path | None = None
    if sibling.exists() and card_path(sibling).exists():
        card = yaml.safe_load(card_path(sibling).read_text()) or {}
        if card.get("source_sha256") != model_fingerprint(src):
            LOG.warning("%s was made from another version of %s; not using it", sibling, src.name)
        elif card.get("target", "onnxruntime") != target:
            LOG.warning("%s was made for %s, not %s; not using it", sibling, card.get("target", "onnxruntime"), target)
        else:
            if card.get("recipe_version") != RECIPE_VERSION:
                LOG.warning("%s was made with an older INT8 recipe; remake it with `seg-perception quantize`", sibling)
            # A generated TensorRT model is checked by quantize_int8; a sibling may be anything.
            if target == "tensorrt" and (problems := tensorrt_qdq_problems(sibling)):
                raise ModelError(f"{sibling.name} cannot be parsed by TensorRT: {'; '.join(problems)}")
            chosen = sibling
    if chosen is None:
        if not calib_dir:
            flag = " --target tensorrt" if target == "tensorrt" else ""
            raise ConfigError(
                f"precision int8 on {target} runs a Q/DQ model: make one with `seg-perception quantize --model {src} "
                f"--calib DIR{flag} --out {sibling}` or set calibration_dir"
            )
        chosen = precision_cache_dir() / f"{src.stem}{SIBLING_SUFFIX[target]}_auto.onnx"
        quantize_int8(src, calib_dir, chosen, verify_images=0, target=target)
    return chosen


def _check_target(target: str) -> None:
    if target not in INT8_TARGETS:
        raise ConfigError(f"unknown INT8 target {target!r}; one of {', '.join(INT8_TARGETS)}")
