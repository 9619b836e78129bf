"""The only ROS-aware code: the node, its parameters and diagnostics."""
