"""Supervised fine-tuning (`mlx-grpo sft`): the warm start before GRPO, as in DeepSeek-R1.

`config` (SftConfig), `data` (prompt/completion rows rendered by GRPO's templates), `batches`
(mlx-lm's length-bucketed batches, resumable), `trainer` (mlx-lm's completion-only loss, one
update per step), `run` (the run folder, GRPO's). The loop is `train.loop.train`.
"""
