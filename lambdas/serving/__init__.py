"""Torch-free runtime for the ONNX serving artifacts: loading, greedy generation, classification.

Only onnxruntime, tokenizers and numpy are imported here; a test runs it with torch blocked.
"""
