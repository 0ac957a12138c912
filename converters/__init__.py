"""Weight conversion between Hugging Face, GGUF and MLX folders."""
