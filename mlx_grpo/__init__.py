"""mlx-grpo: Group Relative Policy Optimization for small language models, natively in MLX."""

__version__ = "0.1.0"
