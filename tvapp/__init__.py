"""The TV app: households pay utility bills on the set-top box with the remote control."""

__version__ = "0.1.0"
