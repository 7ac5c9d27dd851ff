"""edgeticket: lottery tickets for spiking neural networks, from search to the edge device.

Importing the package is cheap and needs no torch: the search stage imports torch lazily, so
bundle loading and profiling on a device can run with numpy + safetensors + onnxruntime alone.
"""

__version__ = "0.3.0"
