"""Webhooks: Standard Webhooks signing, the transactional outbox, durable delivery."""
