#!/usr/bin/env bash
# A local 3-node NATS JetStream cluster on loopback, for trying roas's replicated log and scale-out.
#
#   scripts/nats-cluster.sh start [DIR]   start the nodes in the background, wait until JetStream answers,
#                                         print the --nats URL list
#   scripts/nats-cluster.sh stop [DIR]    stop them (SIGTERM, then SIGKILL after 10 s)
#   scripts/nats-cluster.sh status [DIR]  which nodes run, their health, the JetStream meta leader
#
# Node i (1..3) serves clients on 127.0.0.1:422(i+1), routes on 127.0.0.1:622(i+1) and monitoring on
# http://127.0.0.1:822(i+1). Each node's config, JetStream data, log and pid file live in DIR/n<i>
# (DIR defaults to /tmp/roas-nats); `stop` keeps them, so a restart finds its streams again; delete DIR
# to start afresh. Uses Debian's nats-server (`apt-get install nats-server`).
set -euo pipefail

CLUSTER_NAME=roas-local
NODES=(1 2 3)
URLS="nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224"

usage() {
    echo "usage: $0 start|stop|status [DIR]   (DIR defaults to /tmp/roas-nats)" >&2
    exit 2
}

fail() {
    echo "nats-cluster: $*" >&2
    exit 1
}

find_server() {
    if command -v nats-server >/dev/null 2>&1; then
        command -v nats-server
    elif [ -x /usr/sbin/nats-server ]; then
        echo /usr/sbin/nats-server
    else
        fail "nats-server not found on the PATH or at /usr/sbin/nats-server: apt-get install nats-server"
    fi
}

client_port() { echo $((4221 + $1)); }
route_port() { echo $((6221 + $1)); }
monitor_port() { echo $((8221 + $1)); }

# The pid in DIR/n<i>/nats-server.pid if that process still runs, else nothing.
running_pid() {
    local file="$DIR/n$1/nats-server.pid" pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        echo "$pid"
    fi
}

# GET http://127.0.0.1:<port><path> with bash's /dev/tcp (no curl needed); prints the body.
http_get() {
    timeout 2 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" "$1" >&3
        sed "1,/^\r\{0,1\}$/d" <&3
    ' "$1" "$2" 2>/dev/null
}

healthy() {
    http_get "$(monitor_port "$1")" /healthz | grep -q '"status":"ok"'
}

write_config() {
    local node=$1 routes="" other
    for other in "${NODES[@]}"; do
        [ "$other" = "$node" ] || routes="$routes        nats://127.0.0.1:$(route_port "$other")
"
    done
    cat >"$DIR/n$node/nats-server.conf" <<EOF
# Written by scripts/nats-cluster.sh.
server_name: n$node
listen: 127.0.0.1:$(client_port "$node")
http: 127.0.0.1:$(monitor_port "$node")
# roas appends records of up to 1 MiB plus headers; the default limit is exactly 1 MiB.
max_payload: 8MB
pid_file: "$DIR/n$node/nats-server.pid"
log_file: "$DIR/n$node/nats-server.log"
jetstream {
    store_dir: "$DIR/n$node/jetstream"
    max_memory_store: 256MB
    max_file_store: 8GB
}
cluster {
    name: $CLUSTER_NAME
    listen: 127.0.0.1:$(route_port "$node")
    routes: [
$routes    ]
}
EOF
}

start() {
    local server node waited=0
    local -a pids=()
    server=$(find_server)
    for node in "${NODES[@]}"; do
        if [ -n "$(running_pid "$node")" ]; then
            fail "node n$node already runs (pid $(running_pid "$node")); '$0 status $DIR' or '$0 stop $DIR'"
        fi
    done
    for node in "${NODES[@]}"; do
        mkdir -p "$DIR/n$node/jetstream"
        write_config "$node"
        # setsid: the nodes outlive this shell and its terminal.
        setsid "$server" -c "$DIR/n$node/nats-server.conf" </dev/null >>"$DIR/n$node/stdout.log" 2>&1 &
        pids[node]=$!
    done
    # Healthy = this node has a JetStream meta leader and is current with it.
    until healthy 1 && healthy 2 && healthy 3; do
        for node in "${NODES[@]}"; do
            if ! kill -0 "${pids[node]}" 2>/dev/null; then
                stop >/dev/null
                fail "node n$node exited; see $DIR/n$node/nats-server.log and $DIR/n$node/stdout.log"
            fi
        done
        if [ "$waited" -ge 300 ]; then
            stop >/dev/null
            fail "the cluster did not elect a JetStream meta leader in 30 s; see $DIR/n*/nats-server.log"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    echo "3-node JetStream cluster '$CLUSTER_NAME' running; data and logs in $DIR/n1..n3" >&2
    echo "$URLS"
}

stop() {
    local node pid waited
    for node in "${NODES[@]}"; do
        pid=$(running_pid "$node")
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        waited=0
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        rm -f "$DIR/n$node/nats-server.pid"
        echo "stopped n$node (pid $pid)"
    done
}

status() {
    local node pid leader="" any=0
    for node in "${NODES[@]}"; do
        pid=$(running_pid "$node")
        if [ -z "$pid" ]; then
            echo "n$node  stopped"
            continue
        fi
        any=1
        if healthy "$node"; then
            echo "n$node  running (pid $pid)  nats://127.0.0.1:$(client_port "$node")  healthy"
        else
            echo "n$node  running (pid $pid)  nats://127.0.0.1:$(client_port "$node")  not healthy yet"
        fi
        if [ -z "$leader" ]; then
            leader=$(http_get "$(monitor_port "$node")" /jsz | tr -d ' \n' | grep -o '"meta_cluster":{[^}]*"leader":"[^"]*"' |
                sed 's/.*"leader":"\([^"]*\)"/\1/' || true)
        fi
    done
    [ -z "$leader" ] || echo "JetStream meta leader: $leader"
    [ "$any" = 0 ] || echo "--nats $URLS"
}

[ $# -ge 1 ] || usage
COMMAND=$1
DIR=${2:-/tmp/roas-nats}
case "$COMMAND" in
start) start ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
