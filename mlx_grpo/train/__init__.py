"""Training: rollout -> rewards -> advantages -> the training batch -> updates, and the loop."""
