"""Model families the engine knows by name, beyond what mlx-lm loads for it.

`LAYERWISE_MODELS`: mlx-lm bodies that are exactly embed_tokens -> layers(h, mask, cache) ->
norm and take `input_embeddings`. Training scores them with each prompt computed once for its
G completions even under gradient checkpointing, layer by layer
(`train.logprobs.shared_prefix_hidden_checkpointed`), and embeds prompts and completions in one
lookup; other bodies are called whole. Add a family here once its mlx-lm body has that shape
(tests/test_rollout.py checks the log-probs and gradients against per-row scoring).
"""

from __future__ import annotations

LAYERWISE_MODELS = frozenset({"qwen2", "qwen3", "llama", "mistral"})
