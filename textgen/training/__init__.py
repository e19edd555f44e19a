"""Training: the trainer (one loop for one machine and many), starting, resuming and
fine-tuning a run, distribution."""
