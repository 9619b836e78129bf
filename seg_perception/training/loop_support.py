"""The training loop's support: RNG state, the epoch's sample order, a background batch
prefetcher, the loss/mIoU curves, warm-start weights, frozen BatchNorm, atomic checkpoint
writes and the ``train.device`` / ``train.deadline_utc`` settings (used by training.train).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seg_perception.errors import ConfigError, ModelError
from seg_perception.nets.checkpoint import checkpoint_weights

__all__ = [
    "epoch_order",
    "freeze_bn_layers",
    "load_init_weights",
    "parse_deadline",
    "plot_curves",
    "prefetch",
    "rng_state",
    "save_atomic",
    "seed_all",
    "set_rng_state",
    "train_device",
]


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(s: dict) -> None:
    random.setstate(s["python"])
    np.random.set_state(s["numpy"])
    torch.set_rng_state(s["torch"])


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(n_real: int, synth_idx: Sequence[int], synth_share: float, seed: int, epoch: int) -> list[int]:
    """Sample order of one epoch: every real sample once + round(share/(1-share) * n_real)
    synthetic samples drawn without replacement, shuffled (deterministic in seed, epoch)."""
    rng = np.random.default_rng([seed, epoch, 7919])
    order = list(range(n_real))
    if len(synth_idx) and synth_share > 0:
        k = min(len(synth_idx), int(round(n_real * synth_share / (1 - synth_share))))
        order += [int(i) for i in rng.choice(np.asarray(synth_idx), size=k, replace=False)]
    rng.shuffle(order)
    return order


def plot_curves(log_path: Path, png_path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("type") == "epoch"]
    if not rows:
        return
    fig, ax1 = plt.subplots(figsize=(8, 4.5))
    ax1.plot([r["epoch"] for r in rows], [r["loss"] for r in rows], "b-", label="train loss")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss", color="b")
    ax2 = ax1.twinx()
    ev = [r for r in rows if r.get("val_miou") is not None]
    if ev:
        ax2.plot([r["epoch"] for r in ev], [100 * r["val_miou"] for r in ev], "r.-", label="val mIoU (EMA)")
    ax2.set_ylabel("val mIoU % (fit indicator)", color="r")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)


def prefetch(gen, depth: int):
    """Run a batch generator in a background thread (augmentation overlaps the training step;
    cv2/numpy/torch release the GIL). Order and content are unchanged. ``depth`` 0 disables it."""
    if depth <= 0:
        yield from gen
        return
    import queue
    import threading

    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()

    def work() -> None:
        try:
            for item in gen:
                q.put(item)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(exc)
        q.put(done)

    threading.Thread(target=work, daemon=True).start()
    while True:
        item = q.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def parse_deadline(value: object) -> float | None:
    """ISO-8601 UTC time (e.g. ``2026-11-27T06:45:00Z``) -> epoch seconds; None if unset."""
    if not value:
        return None
    from datetime import datetime, timezone

    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(f"train.deadline_utc {value!r} is not an ISO-8601 time") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def load_init_weights(model: nn.Module, path: Path, freeze_bn: bool, new_modules: Sequence[str] = ()) -> None:
    """Load model weights (aux head included) for a warm start from ``final_ema.pt`` or ``last.pt``.

    ``new_modules`` (``train.init_new_modules``): name prefixes of modules the checkpoint may
    lack (a branch added for this stage); they keep their fresh initialisation. Anything else
    missing, and any weight the model does not have, is still an error.

    Raises:
        ModelError: missing file or weights that do not fit the configured architecture.
        ConfigError: BN-folded weights (``training.recover``) without ``train.freeze_bn``.
    """
    if not path.is_file():
        raise ModelError(f"train.init_checkpoint: no such file {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
        result = model.load_state_dict(checkpoint_weights(ck, path), strict=False)  # checked below
    except (RuntimeError, OSError) as err:
        raise ModelError(f"train.init_checkpoint {path} does not fit the configured model: {err}") from err
    prefixes = tuple(f"{m}." for m in new_modules)
    missing = [k for k in result.missing_keys if not k.startswith(prefixes)]
    if missing or result.unexpected_keys:
        raise ModelError(
            f"train.init_checkpoint {path} does not fit the configured model: missing {missing[:5]}, "
            f"unexpected {list(result.unexpected_keys)[:5]} (train.init_new_modules: {list(new_modules)})"
        )
    if ck.get("bn_folded") and not freeze_bn:
        raise ConfigError(f"{path} holds BN-folded weights (recovered from ONNX): set train.freeze_bn: true")


def freeze_bn_layers(model: nn.Module) -> None:
    """BatchNorm layers use their running statistics (eval mode); their affine weights still train."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()


def save_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_device(name: object) -> torch.device:
    """``train.device``: ``cpu`` (the default, the documented path), ``cuda`` or ``auto``."""
    name = str(name).lower()
    if name not in ("cpu", "cuda", "auto"):
        raise ConfigError(f"train.device must be cpu, cuda or auto, not {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but torch sees no CUDA device (use cpu or auto)")
    return torch.device("cuda" if name != "cpu" and torch.cuda.is_available() else "cpu")
