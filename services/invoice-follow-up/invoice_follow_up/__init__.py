"""invoice-follow-up: follows every uploaded invoice through Basware's approval and does the
connector's part (acknowledge, transfer and payment responses, the Visma note)."""

SERVICE_NAME = "invoice-follow-up"
