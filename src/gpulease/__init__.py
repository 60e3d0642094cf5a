"""gpulease: rent out GPU compute, with export-control compliance built into the gate."""

__version__ = "0.1.0"
