"""Releases and signature feeds: what installs are offered, entitled and rolled out."""
