"""Integrations with third-party evaluation harnesses; each imports its harness lazily."""
