"""Shared data tables every stage reads: datasets, records, prompts, batches, outputs, budget.

Each stage writes its own rows; ``schema.py`` is the single place the shape is defined.
"""
