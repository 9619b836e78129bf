"""CtxSegNet and build_model (tiny widths, tiny inputs)."""

from __future__ import annotations

import pytest
import torch

from seg_perception.errors import ModelError
from seg_perception.nets.build import build_model, count_parameters

TINY = {"stem": 8, "c1": 16, "n1": 1, "c2": 24, "n2": 2, "decoder": 16}


def test_model_shapes_and_aux() -> None:
    m = build_model(TINY).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        y = m(x)
    assert y.shape == (2, 11, 64, 96) and y.dtype == torch.float32
    m.train()
    main, aux = m.forward_train(x)
    assert main.shape == aux.shape == (2, 11, 64, 96)
    assert count_parameters(m) < count_parameters(m, include_aux=True)


def test_default_model_budget() -> None:
    m = build_model({"stem": 16, "c1": 48, "n1": 3, "c2": 128, "n2": 8, "decoder": 48})
    assert 0.1e6 < count_parameters(m) <= 1.5e6


def test_bad_model_config() -> None:
    with pytest.raises(ModelError):
        build_model({"no_such_arg": 1})
    with pytest.raises(ModelError):
        build_model({"act": "gelu"})
