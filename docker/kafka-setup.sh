#!/bin/sh
# Run once per `docker compose up` by the kafka-setup service, as the super user `admin`:
# creates the topics with their final partition count (the key rule needs a stable
# partition per key), a SCRAM-SHA-512 user per principal of kafka-acls.txt with the password
# in its secret file, and exactly the ACLs that file lists. Every step is idempotent.
set -eu
bin=/opt/kafka/bin
server=kafka:9092
secrets=/run/secrets
acls=/etc/mlconnector/kafka-acls.txt
config=/tmp/admin.properties
umask 077
cat > "$config" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$(cat "$secrets/kafka_admin_password")";
PROPERTIES

for topic in visma.changes visma.notifications basware.results basware.events operator.actions; do
    "$bin/kafka-topics.sh" --bootstrap-server "$server" --command-config "$config" \
        --create --if-not-exists --topic "$topic" --partitions 12 --replication-factor 1
done

grep -v '^#' "$acls" | awk 'NF { print $1 }' | sort -u | while read -r principal; do
    secret="$secrets/kafka_password_$(echo "$principal" | tr '-' '_')"
    "$bin/kafka-configs.sh" --bootstrap-server "$server" --command-config "$config" --alter \
        --add-config "SCRAM-SHA-512=[iterations=8192,password=$(cat "$secret")]" \
        --entity-type users --entity-name "$principal"
done

grep -v '^#' "$acls" | awk 'NF' | while read -r principal operation resource name; do
    "$bin/kafka-acls.sh" --bootstrap-server "$server" --command-config "$config" --add \
        --allow-principal "User:$principal" --operation "$operation" "--$resource" "$name"
done
rm -f "$config"
