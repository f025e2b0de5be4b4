"""Reward functions for r1video: pure Python over completion text and dataset columns (no torch model, no trainer)."""
