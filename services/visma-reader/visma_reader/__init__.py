"""visma-reader: polls Visma by lastModifiedDateTime and publishes one change event per
record version."""

SERVICE_NAME = "visma-reader"
