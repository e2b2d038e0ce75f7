"""Test support: helpers, documents, the live-server harness (not test modules)."""
