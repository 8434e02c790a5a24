"""webhook-gateway: verifies Basware and Visma webhooks and republishes them on Kafka."""

SERVICE_NAME = "webhook-gateway"
