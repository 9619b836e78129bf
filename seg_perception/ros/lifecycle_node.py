"""The segmentation node as a managed (lifecycle) node, for Nav2's ``lifecycle_manager``.

    ros2 run seg_perception segmentation_lifecycle_node

Transitions: configure loads the model and builds the pipeline (a bad parameter or model fails
the transition with the reason); activate subscribes, advertises and starts the worker;
deactivate withdraws every topic and the service and stops the worker; cleanup releases the
backend; shutdown does what is left. Parameters are declared at construction, so a params
file or ``ros2 param set`` before configure take effect. The plain ``segmentation_node`` stays.
"""

from __future__ import annotations

import sys
from typing import Any

import rclpy
from rclpy.lifecycle import LifecycleState, TransitionCallbackReturn
from rclpy.lifecycle import Node as LifecycleNode

from seg_perception.errors import SegPerceptionError
from seg_perception.ros.node import NODE_NAME, SegmentationNode, spin
from seg_perception.ros.transport import apply_default_profile

__all__ = ["LifecycleSegmentationNode", "main"]


class LifecycleSegmentationNode(SegmentationNode, LifecycleNode):
    """``SegmentationNode`` whose pipeline follows the lifecycle transitions (see module docstring)."""

    def __init__(self, node_name: str = NODE_NAME, **kwargs: Any) -> None:
        super().__init__(node_name, autostart=False, **kwargs)
        self._is_active = False

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.configure_pipeline()
        except SegPerceptionError as err:
            self.get_logger().error(f"configure failed: {err}")
            self.cleanup_pipeline()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.activate_pipeline()
        self._is_active = True
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.deactivate_pipeline()
        self._is_active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.cleanup_pipeline()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._is_active:
            self.deactivate_pipeline()
            self._is_active = False
        self.cleanup_pipeline()
        return TransitionCallbackReturn.SUCCESS


def main(args: list[str] | None = None) -> int:
    """Entry point: ``ros2 run seg_perception segmentation_lifecycle_node`` (starts unconfigured)."""
    apply_default_profile()
    rclpy.init(args=args if args is not None else sys.argv)
    return spin(LifecycleSegmentationNode())


if __name__ == "__main__":
    sys.exit(main())
