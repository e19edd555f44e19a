"""The run folder (the contract between training and everything after it), loading a
run, describing it."""
