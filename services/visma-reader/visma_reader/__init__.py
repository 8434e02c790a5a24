"""visma-reader: polls Visma.net by lastModifiedDateTime and publishes change events."""
