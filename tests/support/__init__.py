"""Factories and helpers for the server's tests, grouped by what they are about."""
