"""PyTorch backend: TorchScript, ExportedProgram (.pt2) or a training checkpoint, on CPU or CUDA.

Model formats, the checkpoint loader hook, fp16 and CUDA graphs: docs/backends.md.
``torch`` is imported inside functions: the registry may load this module on any machine.
"""

from __future__ import annotations

import logging
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from seg_perception.backends import gpu_postprocess
from seg_perception.backends.base import Backend, LabelRequest, TensorSpec, register_backend
from seg_perception.errors import BackendUnavailable, ConfigError, ModelError

LOG = logging.getLogger(__name__)

#: ``f(path, map_location) -> torch.nn.Module`` turning a checkpoint file into a module.
CheckpointLoader = Callable[[Path, str], Any]
_checkpoint_loader: CheckpointLoader | None = None


def register_checkpoint_loader(loader: CheckpointLoader | None) -> None:
    """Use ``loader(path, map_location)`` for checkpoint files (None restores the default)."""
    global _checkpoint_loader
    _checkpoint_loader = loader


def import_torch() -> Any:
    try:
        import torch
    except ImportError as err:
        raise BackendUnavailable(f"PyTorch is not installed: {err}") from err
    return torch


def detect_format(path: Path) -> str:
    """ "torchscript", "exported" or "checkpoint" from the archive's entries (not the suffix).

    ``torch.jit.save`` archives hold ``constants.pkl`` and ``code/``; ``torch.export.save``
    archives hold ``archive_format`` or ``serialized_exported_program.json``; anything
    else (including legacy non-zip pickles) is treated as a ``torch.save`` checkpoint.
    """
    if not zipfile.is_zipfile(path):
        return "checkpoint"
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelError(f"{path} is not a readable PyTorch archive: {err}") from err
    tails = {n.split("/", 1)[-1] for n in names}
    if "constants.pkl" in tails and any("/code/" in f"/{n}" for n in names):
        return "torchscript"
    if "archive_format" in tails or any(n.endswith("serialized_exported_program.json") for n in names):
        return "exported"
    return "checkpoint"


def _state_dict_of(ckpt: Any) -> dict[str, Any]:
    if isinstance(ckpt, dict):
        for k in ("model_state_dict", "state_dict", "model", "ema_state_dict"):
            v = ckpt.get(k)
            if isinstance(v, dict) and v:
                return v
        if ckpt and all(hasattr(v, "shape") for v in ckpt.values()):
            return ckpt  # a bare state dict
    raise ModelError("checkpoint holds no model weights (expected a 'model_state_dict' or 'state_dict' mapping)")


def default_checkpoint_loader(path: Path, map_location: str) -> Any:
    """A module from a project training checkpoint (``final_ema.pt``/``last.pt``: EMA weights, aux head dropped)."""
    import_torch()
    from seg_perception.nets.checkpoint import load_checkpoint_model

    model, _info = load_checkpoint_model(path)
    return model


def generic_checkpoint_loader(path: Path, map_location: str) -> Any:
    """A project network from a ``{"model_state_dict" | "state_dict" | "model": weights, "model_config": {...},
    "num_classes": K}`` checkpoint (see docs/backends.md); register it for such files."""
    torch = import_torch()
    from seg_perception.nets.build import build_model

    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ModelError(f"cannot read checkpoint {path}: {err}") from err
    state = _state_dict_of(ckpt)
    cfg: dict[str, Any] = {}
    if isinstance(ckpt, dict):
        for k in ("model_config", "model_cfg"):
            if isinstance(ckpt.get(k), dict):
                cfg = dict(ckpt[k])
                break
        else:
            conf = ckpt.get("config") or ckpt.get("cfg")
            if isinstance(conf, dict) and isinstance(conf.get("model"), dict):
                cfg = dict(conf["model"])
    num_classes = None
    if isinstance(ckpt, dict):
        num_classes = ckpt.get("num_classes") or (len(ckpt["class_names"]) if ckpt.get("class_names") else None)
    if num_classes is None and "classifier.weight" in state:
        num_classes = int(state["classifier.weight"].shape[0])
    model = build_model(cfg, num_classes=int(num_classes or 11))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("aux_head")]
    unexpected = [k for k in unexpected if not k.startswith("aux_head")]
    if missing or unexpected:
        raise ModelError(
            f"checkpoint {path.name} does not match the training architecture (config {cfg}): "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model


def load_module(path: Path, map_location: str) -> tuple[Any, str, tuple[int, ...] | None]:
    """(callable module in eval mode, format, static input shape or None) for a model file."""
    torch = import_torch()
    fmt = detect_format(path)
    static_shape = None
    try:
        if fmt == "torchscript":
            module = torch.jit.load(str(path), map_location=map_location)
        elif fmt == "exported":
            ep = torch.export.load(str(path))
            example = getattr(ep, "example_inputs", None)
            if example and not getattr(ep, "range_constraints", None) and example[0]:
                static_shape = tuple(int(v) for v in example[0][0].shape)
            module = ep.module().to(map_location)
        else:
            module = (_checkpoint_loader or default_checkpoint_loader)(path, map_location)
            module = module.to(map_location)
    except (ModelError, BackendUnavailable):
        raise
    except Exception as err:
        raise ModelError(f"cannot load {fmt} model {path}: {err}") from err
    if fmt != "exported":  # an exported program's train/eval mode is fixed at export; .eval() raises
        module.eval()
    return module, fmt, static_shape


def _first_tensor(out: Any) -> Any:
    """The first tensor of a model output (tensor, tuple/list, or dict like {'out': ...})."""
    if isinstance(out, (tuple, list)):
        return _first_tensor(out[0])
    if isinstance(out, dict):
        return _first_tensor(out.get("out", next(iter(out.values()))))
    return out


class TorchBackend(Backend):
    """A PyTorch model.

    Args:
        model_path: TorchScript / ExportedProgram / training checkpoint (see docs/backends.md).
        device: "cuda", "cuda:N" or "cpu"; None picks CUDA when available.
        precision: "fp32", or "fp16" (CUDA only).
        cuda_graphs: replay a captured CUDA graph per input shape (CUDA only).
        input_size: (H, W) to report a static input (the Segmenter then feeds exactly it).
        num_threads: torch intra-op threads on CPU (0 = leave torch's setting).
        postprocess_on_device: do ``infer_labels`` in torch; default True on CUDA, False on
            CPU (where the numpy post-processing is as fast).
    """

    name = "torch"

    def __init__(
        self,
        model_path: str | Path,
        device: str | None = None,
        precision: str = "fp32",
        cuda_graphs: bool = False,
        input_size: tuple[int, int] | list[int] | None = None,
        num_threads: int = 0,
        postprocess_on_device: bool | None = None,
        **_: Any,
    ) -> None:
        torch = import_torch()
        self._torch = torch
        if device in (None, "", "auto"):
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dev = str(device).lower()
        if dev.startswith("cuda") or dev == "gpu":
            if not torch.cuda.is_available():
                raise BackendUnavailable(
                    f"PyTorch has no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda})"
                )
            dev = "cuda" if dev == "gpu" else dev
        elif dev != "cpu":
            raise ConfigError(f"torch device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
        self._dev = torch.device(dev)
        self._cuda = self._dev.type == "cuda"
        if precision == "int8":
            raise ConfigError("precision int8 needs the tensorrt backend (calibrated INT8 engine)")
        if precision == "fp16" and not self._cuda:
            raise ConfigError(
                "precision fp16 with the torch backend needs CUDA (half-precision convolutions on CPU are slow)"
            )
        if cuda_graphs and not self._cuda:
            LOG.warning("cuda_graphs ignored: the torch backend runs on CPU")
            cuda_graphs = False
        self._half = precision == "fp16"
        self._precision = precision
        self._graphs_enabled = bool(cuda_graphs)
        self._graphs: dict[tuple[int, ...], tuple[Any, Any, Any]] = {}
        self._lock = threading.Lock()
        if num_threads and not self._cuda:
            torch.set_num_threads(int(num_threads))
        self._post_on_device = self._cuda if postprocess_on_device is None else bool(postprocess_on_device)
        module, self.format, static_shape = load_module(Path(model_path), str(self._dev))
        if self._half:
            module = module.half()
        self._model = module
        if input_size:
            h, w = (int(v) for v in input_size)
            static_shape = (1, 3, h, w)
        in_shape: tuple[int | None, ...] = static_shape or (1, 3, None, None)
        self._input_spec = TensorSpec("input", in_shape, np.dtype(np.float32))
        self._output_spec = TensorSpec("output", (1, None, None, None), np.dtype(np.float32))

    @property
    def device(self) -> str:
        if self._cuda:
            idx = self._dev.index or 0
            return f"cuda:{idx} ({self._torch.cuda.get_device_name(idx)})"
        return "cpu"

    @property
    def description(self) -> str:
        graphs = ", CUDA graphs" if self._graphs_enabled else ""
        return f"torch {self.format} {self._precision}{graphs} on {self.device}"

    # -- running ---------------------------------------------------------------
    def _to_device(self, tensor: np.ndarray) -> Any:
        torch = self._torch
        x = torch.from_numpy(np.ascontiguousarray(tensor, dtype=np.float32))
        if self._cuda:
            x = x.pin_memory().to(self._dev, non_blocking=True)
        return x.half() if self._half else x

    def _run(self, x: Any) -> Any:
        if self._graphs_enabled:
            return self._run_graph(x)
        return _first_tensor(self._model(x))

    def _run_graph(self, x: Any) -> Any:
        torch = self._torch
        shape = tuple(x.shape)
        entry = self._graphs.get(shape)
        if entry is None:
            if len(self._graphs) >= 4:  # the input size keeps changing: graphs no longer pay off
                self._graphs.clear()
            static_in = x.clone()
            side = torch.cuda.Stream(self._dev)
            side.wait_stream(torch.cuda.current_stream(self._dev))
            with torch.cuda.stream(side):
                for _ in range(3):  # warm up allocator and cuDNN autotuning outside the capture
                    self._model(static_in)
            torch.cuda.current_stream(self._dev).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = _first_tensor(self._model(static_in))
            entry = (graph, static_in, static_out)
            self._graphs[shape] = entry
            LOG.info("torch backend: captured a CUDA graph for input %s", list(shape))
        graph, static_in, static_out = entry
        static_in.copy_(x)
        graph.replay()
        return static_out

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        torch = self._torch
        with self._lock, torch.inference_mode():
            out = self._run(self._to_device(tensor))
            return out.float().cpu().numpy()

    def _labels_on_device(
        self, tensor: np.ndarray, request: LabelRequest
    ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Arg-max/softmax on the model's device; None when disabled or the output is not logits."""
        if not self._post_on_device:
            return None
        torch = self._torch
        with self._lock, torch.inference_mode():
            out = self._run(self._to_device(tensor))
            if not gpu_postprocess.accepts_logits(out, request.num_classes):
                return None
            labels, conf = gpu_postprocess.logits_to_labels(
                out, tuple(tensor.shape[-2:]), request.content_hw, request.image_hw, request.want_confidence
            )
            return labels.cpu().numpy(), (conf.cpu().numpy() if conf is not None else None)

    def close(self) -> None:
        self._graphs.clear()
        self._model = None
        if self._cuda:
            self._torch.cuda.empty_cache()


@register_backend("torch")
def _make(model_path: Path, **options: Any) -> Backend:
    return TorchBackend(model_path, **options)
