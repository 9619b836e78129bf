"""Inference backends behind one interface, chosen by name."""

from seg_perception.backends.base import (
    PRECISIONS,
    Backend,
    TensorSpec,
    create_backend,
    register_backend,
    registered_backends,
)

__all__ = ["PRECISIONS", "Backend", "TensorSpec", "create_backend", "register_backend", "registered_backends"]
