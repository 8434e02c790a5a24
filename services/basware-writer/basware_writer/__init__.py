"""basware-writer: consumes visma.changes and makes Basware match Visma."""
