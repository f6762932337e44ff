"""Shared library of zakaz: everything the sources, the services and the CLI have in common."""

__version__ = "0.1.0"
