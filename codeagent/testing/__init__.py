"""Test helpers: a scripted, loopback-only Anthropic Messages API server."""
