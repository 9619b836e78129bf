"""Evaluation: metrics, dataset and bag readers/writers, offline bag replay, live-replay scoring, reports.

ROS-free: the live replay's ROS side is ``ros.live_eval``.
"""
