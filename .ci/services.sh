#!/usr/bin/env bash
# Throwaway PostgreSQL + Redis for the scale-out test (tests/test_scaleout.py) and for trying
# deploy/endpoints.postgres.yml by hand. Nothing is installed as a system service and nothing
# listens on a public interface.
#
#   .ci/services.sh install                        # apt-get install postgresql redis-server when absent
#   .ci/services.sh start DIR [PG_PORT] [REDIS_PORT] # install if needed, start both, write DIR/env
#   .ci/services.sh stop DIR                       # stop both and delete DIR
#
# DIR/env holds the variables deploy/endpoints.postgres.yml reads (DB_HOST, DB_PORT, DB_DATABASE,
# DB_USER, DB_PASSWORD, REDIS_HOST, REDIS_PORT, REDIS_DB, REDIS_PASSWORD), one KEY=value per line.
# PostgreSQL refuses to run as root: as root the cluster is run by the `postgres` user that the
# Debian package creates (runuser); as another user, by that user. DIR must not be inside a
# directory the postgres user cannot enter (e.g. pytest's 0700 tmp dirs): use /tmp/<name>.
set -euo pipefail

PG_PORT_DEFAULT=55432
REDIS_PORT_DEFAULT=56379

die() { echo "services.sh: $*" >&2; exit 1; }

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1; }

install() {
    if [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] && command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
            || die "PostgreSQL と Redis がありません。root で 'apt-get install postgresql redis-server' を実行してください / install postgresql and redis-server"
        sudo="sudo -n"
    fi
    echo "services.sh: apt-get install postgresql redis-server" >&2
    $sudo apt-get update -qq
    # (the packages may start their own default instances on 5432/6379; ours use other ports)
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        postgresql redis-server >/dev/null
}

# run_pg CMD...: run a PostgreSQL program as the user allowed to own the cluster
run_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

secret() { head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

start() {
    local dir="${1:?usage: services.sh start DIR [PG_PORT] [REDIS_PORT]}"
    local pg_port="${2:-$PG_PORT_DEFAULT}" redis_port="${3:-$REDIS_PORT_DEFAULT}"
    install
    local bin; bin="$(pg_bin)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    chmod 755 "$dir"
    local db_password redis_password
    db_password="$(secret)"
    redis_password="$(secret)"

    # PostgreSQL: own cluster, TCP on 127.0.0.1 only, password (SCRAM) authentication
    mkdir -p "$dir/pg"
    printf '%s\n' "$db_password" > "$dir/pgpass"
    chmod 600 "$dir/pgpass"
    if [ "$(id -u)" -eq 0 ]; then chown postgres: "$dir/pg" "$dir/pgpass"; fi
    run_pg "$bin/initdb" -D "$dir/pg/data" -U rasa --pwfile="$dir/pgpass" --auth=scram-sha-256 \
        -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$dir/pgpass"
    run_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 60 start \
        -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg" >/dev/null \
        || { cat "$dir/pg/postgres.log" >&2; die "PostgreSQL did not start on port $pg_port"; }
    PGPASSWORD="$db_password" "$bin/createdb" -h 127.0.0.1 -p "$pg_port" -U rasa rasa

    # Redis: no persistence, 127.0.0.1 only, password
    redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
        --requirepass "$redis_password" --daemonize yes --dir "$dir" \
        --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
    for _ in $(seq 50); do
        redis-cli -h 127.0.0.1 -p "$redis_port" --no-auth-warning -a "$redis_password" ping 2>/dev/null \
            | grep -q PONG && break
        sleep 0.1
    done
    redis-cli -h 127.0.0.1 -p "$redis_port" --no-auth-warning -a "$redis_password" ping | grep -q PONG \
        || { cat "$dir/redis.log" >&2; die "Redis did not start on port $redis_port"; }

    cat > "$dir/env" <<EOF
DB_HOST=127.0.0.1
DB_PORT=$pg_port
DB_DATABASE=rasa
DB_USER=rasa
DB_PASSWORD=$db_password
REDIS_HOST=127.0.0.1
REDIS_PORT=$redis_port
REDIS_DB=1
REDIS_PASSWORD=$redis_password
PG_BIN=$bin
EOF
    chmod 600 "$dir/env"
    echo "services.sh: PostgreSQL 127.0.0.1:$pg_port, Redis 127.0.0.1:$redis_port; settings in $dir/env" >&2
}

stop() {
    local dir="${1:?usage: services.sh stop DIR}"
    [ -d "$dir" ] || return 0
    local bin; bin="$(pg_bin)"
    if [ -f "$dir/pg/data/postmaster.pid" ]; then
        run_pg "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null || true
    fi
    if [ -f "$dir/redis.pid" ]; then
        kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
        for _ in $(seq 50); do [ -f "$dir/redis.pid" ] || break; sleep 0.1; done
    fi
    rm -rf "$dir"
}

case "${1:-}" in
    install) install ;;
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 install | start DIR [PG_PORT] [REDIS_PORT] | stop DIR" >&2; exit 2 ;;
esac
