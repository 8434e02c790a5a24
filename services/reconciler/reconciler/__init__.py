"""reconciler: reads each entity from Visma and from Basware and compares them, record by
record, on the fields the connector owns (README: "Reconcile")."""

SERVICE_NAME = "reconciler"
