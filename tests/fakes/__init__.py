"""Local stand-ins for the chat platforms, run on loopback for the adapter tests."""
