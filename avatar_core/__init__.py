"""Policies shared by the token server and the bot (no dependency on either)."""
