"""Abuse detection: a licence used on more PCs, by more users or from more places than allowed."""
