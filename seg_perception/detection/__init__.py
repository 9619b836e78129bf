"""Object detectors for classes the segmentation model lacks (cup, bottle, laptop, ...).

``load_detector(name)`` returns a ``Detector`` by name; today ``"objectron"``, the
MediaPipe Objectron SSD-MobileNetV2 (Open Images V4, 23 classes, Apache-2.0), fetched
by ``seg-perception fetch-models`` into a cache outside the repository.
"""

from seg_perception.detection.base import Detection, Detector, load_detector

__all__ = ["Detection", "Detector", "load_detector"]
