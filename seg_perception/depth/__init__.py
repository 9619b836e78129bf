"""RGB-D: depth decoding, colour/depth sync, labelled point clouds, object positions, depth-aware grids.

Core layer: numpy only, no ROS. Frames: depth is registered to the colour image and shares its
intrinsics; points are in the camera optical frame (REP-103: x right, y down, z forward, metres)
unless a function says grid frame. See docs/rgbd.md.
"""
