"""The network: the Keras model, its fused cells, the one-token step, its sizes, and the
held-out window loss."""
