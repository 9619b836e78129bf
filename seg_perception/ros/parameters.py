"""Declare seg_perception.node_config.PARAMETERS on an rclpy node and read them back."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from seg_perception.errors import ConfigError
from seg_perception.node_config import PARAMETERS, NodeConfig

_TYPES = {
    "bool": (ParameterType.PARAMETER_BOOL, Parameter.Type.BOOL),
    "int": (ParameterType.PARAMETER_INTEGER, Parameter.Type.INTEGER),
    "double": (ParameterType.PARAMETER_DOUBLE, Parameter.Type.DOUBLE),
    "string": (ParameterType.PARAMETER_STRING, Parameter.Type.STRING),
    "double[]": (ParameterType.PARAMETER_DOUBLE_ARRAY, Parameter.Type.DOUBLE_ARRAY),
    "int[]": (ParameterType.PARAMETER_INTEGER_ARRAY, Parameter.Type.INTEGER_ARRAY),
    "string[]": (ParameterType.PARAMETER_STRING_ARRAY, Parameter.Type.STRING_ARRAY),
}


def declare_parameters(node: Node) -> NodeConfig:
    """Declare every parameter (with description, type and read-only flag) and return the validated config.

    Raises ConfigError naming the offending parameter.
    """
    values: dict[str, Any] = {}
    for d in PARAMETERS:
        if d.read_only:
            continue  # set by the node itself once known (declare_read_only)
        ptype, rtype = _TYPES[d.kind]
        desc = d.description + (f" One of: {', '.join(d.choices)}." if d.choices else "")
        descriptor = ParameterDescriptor(description=desc, type=ptype, read_only=d.read_only)
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


def declare_read_only(node: Node, name: str, value: Any) -> None:
    """Declare a read-only parameter (e.g. class_names) with the value the node determined."""
    d = next(p for p in PARAMETERS if p.name == name)
    ptype, _ = _TYPES[d.kind]
    node.declare_parameter(name, value, ParameterDescriptor(description=d.description, type=ptype, read_only=True))
