#!/bin/sh
# The integration suite: the whole shop in one cluster — every table the unit tests use,
# written and read back in one session, alone in its cluster while the unit tests run on
# the other four.
set -eu
psql() { command psql -h db -U postgres -v ON_ERROR_STOP=1 -qtA "$@"; }
for table in accounts inventory orders payments reviews shipping; do
  psql -c "create table if not exists $table (cluster text, at timestamptz default now())"
  psql -c "insert into $table (cluster) values ('$PROJECT_NAME')"
done
seen=$(psql -c "select string_agg(distinct cluster, ',') from (select cluster from accounts union all select cluster from orders) t")
[ "$seen" = "$PROJECT_NAME" ] || { echo "integration: expected only $PROJECT_NAME, found $seen"; exit 1; }
echo "integration: ok in $PROJECT_NAME"
