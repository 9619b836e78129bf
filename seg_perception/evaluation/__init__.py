"""Evaluation: metrics, dataset and bag readers/writers, offline and live bag replay, reports.

Nothing here imports rclpy except ``live`` (a ROS client tool, imported lazily by the CLI).
"""
