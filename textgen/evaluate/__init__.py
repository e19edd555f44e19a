"""Measuring runs: held-out loss and sample figures, comparing cells, the long-range probe."""
