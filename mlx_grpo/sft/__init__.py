"""Supervised fine-tuning (`mlx-grpo sft`): the warm start before GRPO, as in DeepSeek-R1.

`config` (SftConfig), `data` (prompt/completion rows rendered by GRPO's templates), `batches`
(mlx-lm's length-bucketed batches, resumable), `loss` (completion-only NLL, GRPO's log-prob code),
`trainer` (one update per step), `run` (the run folder, GRPO's). The loop is `train.loop.train`.
"""
