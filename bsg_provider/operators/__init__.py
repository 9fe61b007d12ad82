"""Operators of the BSG provider."""
