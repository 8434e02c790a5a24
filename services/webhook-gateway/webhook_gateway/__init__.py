"""webhook-gateway: verifies Basware and Visma webhooks and republishes them on Kafka."""
