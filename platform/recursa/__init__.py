"""recursa: train small tool-using agents with reinforcement learning on Ray, and serve them."""

__version__ = "0.1.0"
