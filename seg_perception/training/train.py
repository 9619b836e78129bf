"""Training loop for the CamVid networks (CtxSegNet, LiteSegNet).

CLI: ``seg-perception train --config config/train_camvid.yaml [--resume]`` calls
:func:`main`; equivalently ``python -m seg_perception.training.train --config ...``.

Every epoch writes ``runs/<name>/last.pt`` (model, EMA, optimizer, scheduler,
epoch, step, RNG states, config), appends one JSON line to ``log.jsonl`` and
redraws ``curves.png``. The final model is the EMA weights of the last epoch
(no checkpoint selection). The CamVid test split is never read here.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seg_perception.errors import DatasetError
from seg_perception.nets.build import build_model, count_parameters
from seg_perception.training.config import load_config, resolve_path
from seg_perception.training.data import (
    IGNORE_INDEX,
    NUM_CLASSES,
    Augmenter,
    enet_class_weights,
    iterate_batches,
    load_camvid_split,
    load_camvid_splits,
    load_synthetic,
)
from seg_perception.training.loop_support import (
    epoch_order,
    freeze_bn_layers,
    load_init_weights,
    parse_deadline,
    plot_curves,
    prefetch,
    rng_state,
    save_atomic,
    seed_all,
    set_rng_state,
    train_device,
)
from seg_perception.training.losses import SegLoss
from seg_perception.training.metrics import evaluate
from seg_perception.training.optim import ModelEMA, lr_lambda, param_groups

__all__ = ["main", "train"]


# --------------------------------------------------------------------------- train
def train(
    config_path: str | Path,
    resume: bool = False,
    max_steps: int | None = None,
    deadline_utc: str | None = None,
    run_root: str | Path | None = None,
) -> dict:
    """Train as configured; returns the final metrics dict.

    ``max_steps`` (debug/benchmark) stops early. ``deadline_utc`` (ISO time, optional): if the
    measured epoch time shows the planned epochs cannot finish by then, the run is shortened
    and the poly schedule compressed (logged); it never lengthens the run. ``run_root``
    replaces the config's ``run_dir`` (e.g. a GPU machine's output folder).
    """
    cfg = load_config(config_path)
    if run_root is not None:
        cfg["run_dir"] = str(Path(run_root).resolve())
    dcfg, mcfg, tcfg = cfg["data"], cfg["model"], cfg["train"]
    device = train_device(tcfg.get("device", "cpu"))
    seed = int(cfg.get("seed", 0))
    torch.set_num_threads(int(tcfg.get("num_threads", 2)))
    try:
        import cv2

        cv2.setNumThreads(1)  # augmentation runs beside the training step; avoid oversubscription
    except ImportError:  # pragma: no cover
        pass
    seed_all(seed)
    run_dir = resolve_path(cfg.get("run_dir", "runs"), cfg) / cfg["name"]
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path, ckpt_path = run_dir / "log.jsonl", run_dir / "last.pt"
    mean, std = [float(v) for v in dcfg["mean"]], [float(v) for v in dcfg["std"]]

    def log(rec: dict) -> None:
        with log_path.open("a") as fh:
            fh.write(json.dumps(rec) + "\n")

    # ---- data
    t0 = time.time()
    root = resolve_path(dcfg["root"], cfg)
    splits = list(dcfg["train_splits"])
    if "test" in splits:
        raise DatasetError("the test split must never be used for training")
    real = load_camvid_splits(root, splits)
    val = load_camvid_split(root, dcfg["val_split"]) if dcfg.get("val_split") else None
    scfg = cfg.get("synthetic", {}) or {}
    synth_train = synth_val = None
    synth_status = "disabled"
    if scfg.get("enabled", False):
        try:
            cache = resolve_path(scfg.get("cache_dir", "runs/synth_cache"), cfg)
            h, w = int(scfg.get("height", 360)), int(scfg.get("width", 480))
            synth_train = load_synthetic(range(*scfg["train_seeds"]), cache, h, w)
            synth_val = load_synthetic(range(*scfg["val_seeds"]), cache, h, w)
            synth_status = f"{len(synth_train)} train scenes, {len(synth_val)} held-out scenes"
        except (DatasetError, ImportError, AttributeError, TypeError) as exc:
            if scfg.get("required", False):
                raise
            synth_status = f"unavailable ({exc}); training on CamVid only"
            synth_train = synth_val = None
    data = real if synth_train is None else real.extend(synth_train)
    synth_idx = list(range(len(real), len(data)))
    weights = enet_class_weights(real.labels, NUM_CLASSES, float(tcfg.get("class_weight_c", 1.10)))
    print(
        f"[data] {len(real)} real ({'+'.join(splits)}), synthetic: {synth_status}; "
        f"val={len(val) if val else 0}; loaded in {time.time() - t0:.1f}s",
        flush=True,
    )
    print(f"[data] class weights: {np.round(weights, 2).tolist()}", flush=True)

    # ---- model / optim
    model: nn.Module = build_model(mcfg, NUM_CLASSES)  # CtxSegNet or LiteSegNet (model.name)
    model.train()
    ckpt_exists = resume and ckpt_path.is_file()
    init_from = resolve_path(tcfg["init_checkpoint"], cfg) if tcfg.get("init_checkpoint") and not ckpt_exists else None
    if init_from is not None:
        # Warm start (stage 2 of a two-stage schedule): weights only; optimizer, schedule and EMA
        # counter start fresh so the new LR schedule runs in full.
        new_modules = [str(m) for m in tcfg.get("init_new_modules") or []]
        load_init_weights(model, init_from, bool(tcfg.get("freeze_bn", False)), new_modules)
        print(f"[init] weights from {init_from}", flush=True)
    if tcfg.get("freeze_bn", False):
        freeze_bn_layers(model)
    model.to(device)
    ema = ModelEMA(model, float(tcfg.get("ema_decay", 0.999)))
    if init_from is not None:
        ema.updates = int(tcfg.get("init_ema_updates", 10000))  # decay at full strength from the start
    bs = int(tcfg["batch_size"])
    epochs = int(tcfg["epochs"])
    synth_share = float(scfg.get("share", 0.1)) if synth_train is not None else 0.0
    steps_per_epoch = len(epoch_order(len(real), synth_idx, synth_share, seed, 0)) // bs
    plan = {"epochs": epochs, "total_steps": epochs * steps_per_epoch}
    opt = torch.optim.AdamW(
        param_groups(model, float(tcfg["weight_decay"]), float(tcfg["lr"]), float(tcfg.get("encoder_lr_mult", 1.0))),
        lr=float(tcfg["lr"]),
        betas=(0.9, 0.999),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lr_lambda(
            plan,
            int(tcfg.get("warmup_steps", 200)),
            float(tcfg.get("poly_power", 0.9)),
            float(tcfg.get("min_lr_ratio", 0.0)),
        ),
    )
    crit = SegLoss.from_config(tcfg, torch.from_numpy(weights).to(device), IGNORE_INDEX)
    aux_w = float(tcfg.get("aux_weight", 0.4))
    aug = Augmenter(
        crop=tcfg["crop"],
        scale_range=tcfg["scale_range"],
        hflip=bool(tcfg.get("hflip", True)),
        **{k: float(v) for k, v in (tcfg.get("color_jitter") or {}).items()},
    )
    start_epoch, step = 0, 0
    if ckpt_exists:
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["scheduler"])
        set_rng_state(ck["rng"])
        start_epoch, step = int(ck["epoch"]) + 1, int(ck["step"])
        ck_epochs = int(((ck.get("config") or {}).get("train") or {}).get("epochs", epochs))
        if ck_epochs == epochs and ck.get("plan"):  # same config: keep a deadline-shortened plan
            plan.update(ck["plan"])
            epochs = int(plan["epochs"])
        print(
            f"[resume] from {ckpt_path} at epoch {start_epoch}, step {step}; {epochs} epochs "
            f"(checkpoint config: {ck_epochs})",
            flush=True,
        )
        log(
            {
                "type": "resume",
                "time": time.time(),
                "epoch": start_epoch,
                "step": step,
                "epochs": epochs,
                "checkpoint_config_epochs": ck_epochs,
                "deadline_utc": deadline_utc,
            }
        )
    elif not resume:
        if log_path.exists():
            log_path.unlink()
        log(
            {
                "type": "start",
                "time": time.time(),
                "config": {k: v for k, v in cfg.items() if k != "_config_path"},
                "trained_on": splits,
                "synthetic": synth_status,
                "n_real": len(real),
                "deadline_utc": deadline_utc,
                "params": count_parameters(model),
                "init_checkpoint": str(init_from) if init_from else None,
                "steps_per_epoch": steps_per_epoch,
                "total_steps": plan["total_steps"],
            }
        )
    print(
        f"[model] {count_parameters(model) / 1e6:.3f} M params; {epochs} epochs x {steps_per_epoch} steps "
        f"(batch {bs}, crop {tcfg['crop']})",
        flush=True,
    )

    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    eval_every = int(tcfg.get("eval_every", 5))
    val_miou = None
    deadline = parse_deadline(deadline_utc)
    epoch_times: list[float] = []
    epoch = start_epoch
    while epoch < epochs:
        te = time.time()
        order = epoch_order(len(real), synth_idx, synth_share, seed, epoch)
        batches = prefetch(iterate_batches(data, order, bs, aug, seed, epoch, mean, std), int(tcfg.get("prefetch", 2)))
        it = (
            tqdm(batches, total=len(order) // bs, desc=f"epoch {epoch + 1}/{epochs}", mininterval=15, ascii=True)
            if tqdm
            else batches
        )
        run_loss, n = 0.0, 0
        for x, y in it:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            # without an aux loss the aux head's forward would be wasted work
            main_out, aux_out = model.forward_train(x) if aux_w > 0 else (model(x), None)
            loss = crit(main_out, y)
            if aux_out is not None and aux_w > 0:
                loss = loss + aux_w * crit(aux_out, y)
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update(model)
            step += 1
            run_loss += loss.item()
            n += 1
            if tqdm:
                extra = {"val_mIoU": f"{100 * val_miou:.1f}%"} if val_miou is not None else {}
                it.set_postfix(loss=f"{run_loss / n:.3f}", lr=f"{sched.get_last_lr()[0]:.2e}", **extra)
            if max_steps is not None and step >= max_steps:
                break
        rec = {
            "type": "epoch",
            "epoch": epoch + 1,
            "step": step,
            "loss": run_loss / max(n, 1),
            "lr": sched.get_last_lr()[0],
            "epoch_s": time.time() - te,
            "time": time.time(),
        }
        last = epoch + 1 == epochs or (max_steps is not None and step >= max_steps)
        if val is not None and ((epoch + 1) % eval_every == 0 or last):
            tv = time.time()
            val_miou, per = evaluate(ema.ema, val, mean, std, device=device)
            rec.update(val_miou=val_miou, val_iou=per, eval_s=time.time() - tv)
        epoch_times.append(time.time() - te)
        if deadline is not None and epoch + 1 < epochs:
            # Deadline guard (shared CPU): if the remaining epochs will not fit, shorten the run
            # and compress the poly schedule so the LR still anneals to its end value.
            per = float(np.mean(epoch_times[-3:]))
            reserve = float(tcfg.get("deadline_reserve_s", 240))
            fit = int((deadline - time.time() - reserve) // per)
            if epoch + 1 + fit < epochs:
                new_epochs = max(epoch + 2, epoch + 1 + fit)
                print(
                    f"[deadline] {epochs} epochs will not finish by {deadline_utc} "
                    f"({per:.0f} s/epoch): shortening to {new_epochs}",
                    flush=True,
                )
                rec["deadline_shortened_to"] = new_epochs
                epochs = new_epochs
                plan.update(epochs=epochs, total_steps=epochs * steps_per_epoch)
        save_atomic(
            ckpt_path,
            {
                "model": model.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "plan": dict(plan),
                "scheduler": sched.state_dict(),
                "epoch": epoch,
                "step": step,
                "rng": rng_state(),
                "config": {k: v for k, v in cfg.items() if k != "_config_path"},
            },
        )
        log(rec)
        plot_curves(log_path, run_dir / "curves.png")
        vm = f" val mIoU(EMA, fit indicator) {100 * val_miou:.1f}%" if "val_miou" in rec else ""
        print(
            f"[epoch {epoch + 1}/{epochs}] loss {rec['loss']:.4f} lr {rec['lr']:.2e} {rec['epoch_s']:.0f}s{vm}",
            flush=True,
        )
        if max_steps is not None and step >= max_steps:
            break
        epoch += 1

    final = {
        "type": "final",
        "val_miou": val_miou,
        "trained_on": splits,
        "synthetic": synth_status,
        "epochs_done": min(epoch + 1, epochs) if epochs > start_epoch else start_epoch,
        "step": step,
        "planned_epochs": int(tcfg["epochs"]),
        "epochs": epochs,
    }
    ema_cpu = {k: v.cpu() for k, v in ema.ema.state_dict().items()}  # loadable without a GPU
    torch.save(
        {
            "model": ema_cpu,
            "model_config": mcfg,
            "mean": mean,
            "std": std,
            "trained_on": splits,
            "epoch": final["epochs_done"],
        },
        run_dir / "final_ema.pt",
    )
    if synth_val is not None:
        smiou, sper = evaluate(ema.ema, synth_val, mean, std, device=device)
        final.update(synthetic_val_miou=smiou, synthetic_val_iou=sper)
        print(f"[final] synthetic held-out mIoU {100 * smiou:.1f}%", flush=True)
    log(final)
    (run_dir / "final_metrics.json").write_text(json.dumps(final, indent=2))
    print(f"[final] done: {json.dumps({k: v for k, v in final.items() if not k.endswith('_iou')})}", flush=True)
    return final


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry: ``--config PATH [--resume] [--max-steps N]``. Returns an exit code."""
    ap = argparse.ArgumentParser(prog="seg-perception train", description="Train the CamVid segmentation model")
    ap.add_argument("--config", default="config/train_camvid.yaml")
    ap.add_argument("--resume", action="store_true", help="continue from runs/<name>/last.pt")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after N steps (debug)")
    ap.add_argument(
        "--deadline-utc",
        default=None,
        help="ISO time (e.g. 2026-11-27T06:47:00Z); shorten the run if it cannot finish by then",
    )
    ap.add_argument("--run-dir", default=None, help="write runs/<name>/ here instead of the config's run_dir")
    args = ap.parse_args(argv)
    train(
        args.config, resume=args.resume, max_steps=args.max_steps, deadline_utc=args.deadline_utc, run_root=args.run_dir
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
