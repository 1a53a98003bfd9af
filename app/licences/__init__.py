"""The licence registry, its machines, and the exact seat check."""
