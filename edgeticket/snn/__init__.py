"""Thin layer over spikingjelly.activation_based: the LIF factory, the neuron table (neurons.py: every supported
neuron's update as plain ops) and the zoo LIF's step used by exporters."""

from .neuron import lif_step, make_lif, reset_states

__all__ = ["lif_step", "make_lif", "reset_states"]
