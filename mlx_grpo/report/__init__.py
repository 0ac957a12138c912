"""Reporting a run to outside viewers (TensorBoard, W&B): metric names and reporters."""
