"""Inference on a trained model: chat sessions, batch generation, evaluation."""
