#!/bin/sh
# A test that talks from the app to its own database: it writes a row naming its
# cluster, reads the table back, and fails if any other cluster's row is there.
set -eu
psql() { command psql -h db -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
psql -c "create table if not exists inventory (cluster text, at timestamptz default now())"
psql -c "insert into inventory (cluster) values ('$PROJECT_NAME')"
seen=$(psql -c "select string_agg(distinct cluster, ',') from inventory")
[ "$seen" = "$PROJECT_NAME" ] || { echo "inventory: expected only $PROJECT_NAME, found $seen"; exit 1; }
echo "inventory: ok in $PROJECT_NAME ($(psql -c "select count(*) from inventory") row(s))"
