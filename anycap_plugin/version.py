"""The version, in one place (pyproject reads it; reports record it) that imports nothing."""

__version__ = "0.1.0"
