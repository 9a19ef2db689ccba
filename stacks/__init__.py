"""Stacks compose constructs; each construct owns its resources, grants and retry policies."""
