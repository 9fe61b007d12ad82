"""Hooks of the BSG provider."""
