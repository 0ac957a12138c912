"""Reward functions: each maps (prompts, completions, answers) to one float per completion."""
