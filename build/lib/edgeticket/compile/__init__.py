"""Compile stage: ticket -> BN-folded, time-unrolled ONNX graph with packed weights, validated spike for
spike against PyTorch, with a memory plan checked against a target's budget."""
