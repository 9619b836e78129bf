"""Training configs: YAML with a ``base:`` chain, paths resolved against the repository root."""

from __future__ import annotations

from pathlib import Path

import yaml

from seg_perception.errors import ConfigError

__all__ = ["load_config", "resolve_path"]


def _merge(base: dict, override: dict) -> dict:
    """``override`` laid over ``base``: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_config(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """One YAML config with its ``base:`` chain applied (``base`` is relative to the file)."""
    path = path.resolve()
    if path in seen:
        raise ConfigError(f"config {path}: 'base' chain loops back to itself")
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if not isinstance(cfg, dict):
        raise ConfigError(f"config {path} is not a mapping")
    base = cfg.pop("base", None)
    if base is None:
        return cfg
    return _merge(_read_config(path.parent / str(base), (*seen, path)), cfg)


def load_config(path: str | Path) -> dict:
    """Load a YAML training config; resolves relative data/run paths against the repo root
    (the parent of ``config/``) unless they exist relative to the CWD.

    A config may start from another with ``base: other.yaml`` (relative to its own folder) and
    list only what differs; nested mappings merge key by key, lists and scalars replace."""
    path = Path(path)
    cfg = _read_config(path)
    for key in ("name", "data", "model", "train"):
        if key not in cfg:
            raise ConfigError(f"config {path} lacks key {key!r}")
    cfg["_config_path"] = str(path.resolve())
    return cfg


def resolve_path(p: str | Path, cfg: dict) -> Path:
    """``p`` as is when absolute or existing, else relative to the repository root of the config."""
    p = Path(p)
    if p.is_absolute() or p.exists():
        return p
    root = Path(cfg.get("_config_path", ".")).parent.parent
    return root / p
