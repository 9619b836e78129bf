"""Language-grounded masks: "cup", "the red car on the left", "all pedestrians" -> a mask of the newest frame.

ROS-free; the node's ``~/segment_query`` service and the ``seg-perception query`` CLI
both use ``QueryEngine``. See docs/query.md.
"""

from __future__ import annotations

from seg_perception.query.answer import QueryAnswer
from seg_perception.query.engine import QueryEngine

__all__ = ["QueryAnswer", "QueryEngine"]
