"""The lowest layer: user-facing errors, atomic file writes, a run's settings and presets."""
