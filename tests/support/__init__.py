"""Test harness helpers (not tests themselves)."""
