"""The operator console: server-rendered pages and a JSON API over PostgreSQL and Kafka."""
