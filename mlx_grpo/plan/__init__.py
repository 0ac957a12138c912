"""The memory planner: will a training config fit on a device? Answered before loading."""
