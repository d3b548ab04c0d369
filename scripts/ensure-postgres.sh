#!/usr/bin/env bash
# Make sure PostgreSQL's server programs are installed (the topology tests start and restart
# a private server of their own) and that a server answers at 127.0.0.1:$PGPORT (default
# 5432) for user postgres: the one already there, or a private cluster started under
# $PGDATA_DIR with password authentication (a random password, kept beside it, 0600).
#   scripts/ensure-postgres.sh --url   prints the URL the tests use (with that password)
set -euo pipefail
port=${PGPORT:-5432}
datadir=$(realpath -m "${PGDATA_DIR:-data/postgres}")
pwfile="$datadir.password"

if [ "${1:-}" = "--url" ]; then
  password=""
  [ -f "$pwfile" ] && password=":$(cat "$pwfile")"
  echo "postgresql+psycopg://postgres${password}@127.0.0.1:$port/postgres"
  exit 0
fi

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ]; then
  echo "no PostgreSQL server programs here: installing Debian's postgresql"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

if answers; then
  echo "PostgreSQL answers at 127.0.0.1:$port"
  exit 0
fi

# initdb refuses to run as root: run the server as the postgres system user then.
as=()
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  as=(runuser -u postgres --)
fi
mkdir -p "$datadir"
[ "$(id -u)" -ne 0 ] || chown postgres "$datadir"
if [ ! -f "$datadir/PG_VERSION" ]; then
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$pwfile")
  tmp=$(mktemp); cp "$pwfile" "$tmp"; chmod 644 "$tmp"  # initdb runs as postgres
  "${as[@]}" "$bindir/initdb" -D "$datadir" -U postgres --auth=scram-sha-256 \
    --pwfile="$tmp" >/dev/null
  rm -f "$tmp"
fi
"${as[@]}" "$bindir/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -k /tmp" start
echo "PostgreSQL started at 127.0.0.1:$port (data in $datadir)"
