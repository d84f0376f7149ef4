"""Reusable TUI widgets; each renders log text only through ``widgets.text``."""
