"""Verified, zero-gap backups: take, verify, list, restore."""
