"""Declare seg_perception.node_params.PARAMETERS on an rclpy node, read them back, accept live changes.

Structural parameters (model, backend, transport, QoS, ...) are declared read-only: ``ros2 param
set`` refuses them with rclpy's "read-only" reason. Dynamic ones (``ParamDef.dynamic``) are
checked in an on-set callback (``LiveParameters``) and applied by the node at its next frame.
Ranges are in the descriptors (IntegerRange / FloatingPointRange); choices in
``additional_constraints``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg_perception.errors import ConfigError
from seg_perception.node_config import NodeConfig
from seg_perception.node_params import BY_NAME, PARAMETERS, ParamDef

_TYPES = {
    "bool": (ParameterType.PARAMETER_BOOL, Parameter.Type.BOOL),
    "int": (ParameterType.PARAMETER_INTEGER, Parameter.Type.INTEGER),
    "double": (ParameterType.PARAMETER_DOUBLE, Parameter.Type.DOUBLE),
    "string": (ParameterType.PARAMETER_STRING, Parameter.Type.STRING),
    "double[]": (ParameterType.PARAMETER_DOUBLE_ARRAY, Parameter.Type.DOUBLE_ARRAY),
    "int[]": (ParameterType.PARAMETER_INTEGER_ARRAY, Parameter.Type.INTEGER_ARRAY),
    "string[]": (ParameterType.PARAMETER_STRING_ARRAY, Parameter.Type.STRING_ARRAY),
}


def descriptor_for(d: ParamDef) -> ParameterDescriptor:
    """The ROS descriptor of one parameter: type, read-only unless dynamic, range, choices."""
    ptype, _ = _TYPES[d.kind]
    desc = d.description + (f" One of: {', '.join(d.choices)}." if d.choices else "")
    desc += " Dynamic (applied at the next frame)." if d.dynamic else " Read-only after start-up."
    descriptor = ParameterDescriptor(description=desc, type=ptype, read_only=not d.dynamic)
    if d.choices:
        descriptor.additional_constraints = f"one of: {', '.join(d.choices)}"
    if d.range is not None and d.kind == "int":
        descriptor.integer_range = [IntegerRange(from_value=int(d.range[0]), to_value=int(d.range[1]), step=1)]
    elif d.range is not None and d.kind == "double":
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(d.range[0]), to_value=float(d.range[1]), step=0.0)
        ]
    return descriptor


def declare_parameters(node: Node) -> NodeConfig:
    """Declare every parameter (with description, type and read-only flag) and return the validated config.

    Raises ConfigError naming the offending parameter.
    """
    values: dict[str, Any] = {}
    for d in PARAMETERS:
        if d.read_only:
            continue  # set by the node itself once known (declare_read_only)
        _, rtype = _TYPES[d.kind]
        descriptor = descriptor_for(d)
        try:
            if d.kind.endswith("[]") and not d.default:
                # rclpy infers an empty list as a byte array; declare the type without a value instead.
                param = node.declare_parameter(d.name, rtype, descriptor)
            else:
                param = node.declare_parameter(d.name, d.default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as err:
            hint = " (quote strings that YAML reads as other types, e.g. 'off')" if d.kind == "string" else ""
            raise ConfigError(f"parameter {d.name}: expected {d.kind}{hint}: {err}") from err
        value = param.value
        values[d.name] = list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else value
    return NodeConfig.from_params(values)


def current_config(node: Node) -> NodeConfig:
    """The validated config of the node's current parameter values (declared by ``declare_parameters``)."""
    values: dict[str, Any] = {}
    for d in PARAMETERS:
        if d.read_only or not node.has_parameter(d.name):
            continue
        try:
            value = node.get_parameter(d.name).value
        except ParameterUninitializedException:
            continue  # an empty list declared by type only: the default applies
        if value is None:
            continue
        values[d.name] = list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else value
    return NodeConfig.from_params(values)


def declare_read_only(node: Node, name: str, value: Any) -> None:
    """Declare a read-only parameter (e.g. class_names) with the value the node determined."""
    d = next(p for p in PARAMETERS if p.name == name)
    ptype, _ = _TYPES[d.kind]
    node.declare_parameter(name, value, ParameterDescriptor(description=d.description, type=ptype, read_only=True))


class LiveParameters:
    """On-set callback for the dynamic parameters; the node takes the accepted config at its next frame.

    ``prepare(config)`` builds whatever the node needs for a new config (e.g. the grid mapper) and
    raises ConfigError when the config cannot work (e.g. an unknown class name); its result is
    handed back with the config by ``take``. A refused change returns ``successful=False`` with
    the reason, and the node keeps its current parameters.
    """

    def __init__(self, node: Node, config: NodeConfig, prepare: Callable[[NodeConfig], Any]) -> None:
        self._config = config  # the newest accepted config (applied or pending)
        self._prepare = prepare
        self._lock = threading.Lock()
        self._pending: tuple[NodeConfig, Any] | None = None
        node.add_on_set_parameters_callback(self.on_set)

    def on_set(self, params: list[Parameter]) -> SetParametersResult:
        """Validate a batch of changes as a whole; store it for the next frame when valid."""
        changes = {}
        for p in params:
            if p.name not in BY_NAME:
                continue  # rclpy's own (qos_overrides.*, use_sim_time): declared and guarded by rclpy
            value = p.value
            changes[p.name] = list(value) if isinstance(value, list | tuple) or hasattr(value, "tolist") else value
        if not changes:
            return SetParametersResult(successful=True)
        with self._lock:
            try:
                config = self._config.with_changes(changes)
                prepared = self._prepare(config)
            except ConfigError as err:
                return SetParametersResult(successful=False, reason=str(err))
            self._config = config
            self._pending = (config, prepared)
        return SetParametersResult(successful=True, reason="applied at the next frame")

    def reset(self, config: NodeConfig) -> None:
        """Start again from ``config`` (a lifecycle node configured anew); drops any pending change."""
        with self._lock:
            self._config, self._pending = config, None

    def take(self) -> tuple[NodeConfig, Any] | None:
        """The accepted config and its prepared state not yet applied, or None."""
        with self._lock:
            pending, self._pending = self._pending, None
        return pending
