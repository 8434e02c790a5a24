#!/bin/sh
# Makes the PostgreSQL password files docker-compose.yml mounts, once, before the first
# `docker compose up`: one libpq password file per database role of a service (and of the
# `mlconnector` command), `<who>.pgpass`, holding `*:*:*:<role>:<random password>`. The roles
# are those of mlconnector.database_roles for the database `mlconnector`; the
# `database-setup` job creates them with these passwords. Existing files are kept (re-running
# is harmless); every file is readable by its owner only.
#   sh docker/postgres-credentials.sh [.mlconnector/postgres]
set -eu
dir="${1:-.mlconnector/postgres}"
umask 077
mkdir -p "$dir"
for who in visma-reader basware-writer webhook-gateway invoice-follow-up audit-store console \
        reconciler mlconnector-cli; do
    file="$dir/$who.pgpass"
    role="mlconnector_$(echo "$who" | tr '-' '_')"
    [ -s "$file" ] || echo "*:*:*:$role:$(head -c 32 /dev/urandom | base64 | tr -d '/+=\n')" > "$file"
done
echo "PostgreSQL password files in $dir"
