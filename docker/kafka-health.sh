#!/bin/sh
# The broker's healthcheck: it answers an authenticated client (the super user `admin`).
set -eu
umask 077
cat > /tmp/health.properties <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$(cat /run/secrets/kafka_admin_password)";
PROPERTIES
exec /opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 \
    --command-config /tmp/health.properties >/dev/null
