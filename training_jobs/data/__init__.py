"""Synthetic transactions, their summaries, a rule-based budgeting baseline and advisor pairs."""
