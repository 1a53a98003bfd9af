"""Shared building blocks: settings, database, errors, staff auth, signing, pseudonyms."""
