"""Neural building blocks for the transformer model kind: heads, losses, data, optimiser, trainer."""
