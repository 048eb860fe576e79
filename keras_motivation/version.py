"""The package version, written once: setup.py reads this file without importing the package."""

__version__ = "0.4.0"
