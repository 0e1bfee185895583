#!/bin/sh
# A throwaway PostgreSQL server for the lab figures in docs/methodology.md, as the tests start
# theirs: initdb into DIR, the server on loopback PORT and a Unix socket in DIR, default
# settings (fsync on). As root the server runs as the `postgres` user (PostgreSQL refuses root).
#   xtask/throwaway-postgres.sh start DIR [PORT]   prints the connection string
#   xtask/throwaway-postgres.sh stop DIR           stops it and removes DIR
set -eu
action=${1:?start|stop}; dir=${2:?directory}; port=${3:-55432}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case $action in
start)
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=trust \
    --locale=C --encoding=UTF8 >"$dir/initdb.log"
  as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
  as_pg "$bin/createdb" -h "$dir" -p "$port" -U postgres lab
  echo "host=127.0.0.1 port=$port user=postgres dbname=lab sslmode=disable"
  ;;
stop)
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  rm -rf "$dir"
  ;;
esac
