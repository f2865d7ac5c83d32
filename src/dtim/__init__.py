"""DTIM, the Decentralized Threat Intelligence Mesh."""

__version__ = "0.1.0"
