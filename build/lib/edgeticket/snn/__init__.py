"""Thin layer over spikingjelly.activation_based: the LIF factory and the pure LIF step used by exporters."""

from .neuron import lif_step, make_lif, reset_states

__all__ = ["lif_step", "make_lif", "reset_states"]
