"""Privacy-first, on-prem synthetic text data appliance."""

__version__ = "0.1.0"
