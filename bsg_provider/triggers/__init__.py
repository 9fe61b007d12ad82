"""Triggers of the BSG provider."""
