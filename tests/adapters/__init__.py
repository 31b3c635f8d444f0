"""Adapter tests: each drives a real platform client against its local fake."""
