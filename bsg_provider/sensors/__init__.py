"""Sensors of the BSG provider."""
