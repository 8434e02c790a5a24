#!/bin/sh
# Makes the Kafka credentials docker-compose.yml mounts as secrets, once, before the first
# `docker compose up`: a random password per principal of docker/kafka-acls.txt and for the
# super user `admin`, and the broker's JAAS file. Existing files are kept (re-running is
# harmless); every file is readable by its owner only.
#   sh docker/kafka-credentials.sh [.mlconnector/kafka]
set -eu
dir="${1:-.mlconnector/kafka}"
acls="$(dirname "$0")/kafka-acls.txt"
umask 077
mkdir -p "$dir"
password() {
    [ -s "$dir/$1.password" ] || head -c 32 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/$1.password"
}
password admin
for principal in $(grep -v '^#' "$acls" | awk 'NF { print $1 }' | sort -u); do
    password "$principal"
done
admin="$(cat "$dir/admin.password")"
cat > "$dir/kafka_server_jaas.conf" <<JAAS
KafkaServer {
    org.apache.kafka.common.security.plain.PlainLoginModule required
    username="admin" password="$admin" user_admin="$admin";
    org.apache.kafka.common.security.scram.ScramLoginModule required;
};
JAAS
echo "Kafka credentials in $dir"
