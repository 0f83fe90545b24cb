"""Search that never sees plaintext: analyzer tokens in, conversation ids out."""
