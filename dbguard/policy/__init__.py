"""Policies (TOML), project config discovery and inline waivers."""
