"""Conversation records: room sessions and their utterances, kept in SQLite or PostgreSQL."""
