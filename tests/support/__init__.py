"""Test helpers: real components started on loopback (Azurite, an OpenAI-compatible judge server)."""
