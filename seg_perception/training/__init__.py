"""Training, data loading and export of the default CamVid segmentation model (no ROS imports)."""
