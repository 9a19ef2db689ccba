"""SageMaker script-mode training entry points (LoRA adapters for advice and sentiment)."""
