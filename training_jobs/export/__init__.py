"""Adapter -> serving artifact: merge LoRA into the base, export ONNX, quantise int8 (issue 4)."""
