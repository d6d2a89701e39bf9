#!/usr/bin/env bash
# A Ray cluster of one head and N worker nodes on this machine, for trying multi-node behaviour
# (placement, node failure) without a cloud.
#
#   cluster/local/cluster.sh start [N]   # head + N workers (default 2); prints how to connect
#   cluster/local/cluster.sh status      # `ray status` of this cluster
#   cluster/local/cluster.sh stop        # stops this cluster's processes, and only those
#
# Settings (environment): RECURSA_CLUSTER_DIR (default /tmp/recursa-cluster-$USER; kept short
# because Ray's unix sockets live under it), RECURSA_CLUSTER_PORT (GCS port, default 26379; the
# other fixed ports are offsets from it), RECURSA_NODE_CPUS (CPUs each node advertises, default 1).
#
# Token authentication is on: the script writes a token to $RECURSA_CLUSTER_DIR/auth_token and
# every node and client reads it through RAY_AUTH_TOKEN_PATH, so the cluster never depends on,
# or overwrites, ~/.ray/auth_token. Every node and the dashboard listen on 127.0.0.1 only.
#
# Why not `ray stop`: it kills every Ray process of the machine, other people's included. `start`
# launches the nodes with RECURSA_LOCAL_CLUSTER=<dir> in their environment, which every Ray
# process they spawn inherits; `stop` signals the processes that carry it (read from
# /proc/PID/environ) and their descendants (some rename themselves, which hides the variable).
set -euo pipefail

DIR=${RECURSA_CLUSTER_DIR:-/tmp/recursa-cluster-${USER:-$(id -un)}}
PORT=${RECURSA_CLUSTER_PORT:-26379}
CPUS=${RECURSA_NODE_CPUS:-1}
RAY_BIN=${RAY_BIN:-ray}   # e.g. RAY_BIN=.venv/bin/ray
TEMP_DIR="$DIR/ray"

export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH="$DIR/auth_token"

# Ports Ray would otherwise fix at the same default for every node (GCS 6379, dashboard 8265,
# client server 10001, dashboard agent 52365) get distinct values; the rest are left random.
DASHBOARD_PORT=$((PORT + 1))
CLIENT_PORT=$((PORT + 2))
agent_port() { echo $((PORT + 10 + $1)); }   # node index 0 (head) .. N

our_pids() {
    local marked=() p
    for p in /proc/[0-9]*; do
        grep -qzxF "RECURSA_LOCAL_CLUSTER=$DIR" "$p/environ" 2>/dev/null && marked+=("${p#/proc/}")
    done
    ((${#marked[@]})) || return 0
    # Close the set over children, repeated until nothing is added; exited processes (zombies,
    # until their new parent reaps them) need no signal.
    ps -eo pid=,ppid=,stat= | awk -v seed="${marked[*]}" '
        BEGIN { n = split(seed, s, " "); for (i = 1; i <= n; i++) ours[s[i]] = 1 }
        $3 ~ /^Z/ { delete ours[$1]; next }
        { parent[$1] = $2 }
        END {
            do { added = 0
                 for (p in parent) if (!(p in ours) && (parent[p] in ours)) { ours[p] = 1; added = 1 }
            } while (added)
            for (p in ours) print p
        }'
}

start() {
    local workers=${1:-2}
    if [[ -n "$(our_pids)" ]]; then
        echo "a cluster is already running under $DIR; stop it first" >&2
        exit 1
    fi
    mkdir -p "$TEMP_DIR"
    chmod 700 "$DIR"
    if [[ ! -s "$RAY_AUTH_TOKEN_PATH" ]]; then
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$RAY_AUTH_TOKEN_PATH")
    fi

    export RECURSA_LOCAL_CLUSTER="$DIR"
    "$RAY_BIN" start --head --port="$PORT" --num-cpus="$CPUS" --temp-dir="$TEMP_DIR" \
        --node-ip-address=127.0.0.1 --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT" \
        --ray-client-server-port="$CLIENT_PORT" --dashboard-agent-listen-port="$(agent_port 0)" \
        --min-worker-port=0 --max-worker-port=0 --disable-usage-stats
    local i
    for ((i = 1; i <= workers; i++)); do
        "$RAY_BIN" start --address="127.0.0.1:$PORT" --num-cpus="$CPUS" --temp-dir="$TEMP_DIR" \
            --node-ip-address=127.0.0.1 --dashboard-agent-listen-port="$(agent_port "$i")" \
            --min-worker-port=0 --max-worker-port=0 --disable-usage-stats
    done

    cat <<EOF

recursa local cluster: head + $workers workers, $CPUS CPU each, under $DIR
Connect (the token travels in these variables):
  export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$RAY_AUTH_TOKEN_PATH
  RAY_ADDRESS=127.0.0.1:$PORT recursa quickstart
  ray job submit --address http://127.0.0.1:$DASHBOARD_PORT --working-dir . -- python -m recursa.cli quickstart
Stop: $0 stop
EOF
}

stop() {
    local pids
    pids=$(our_pids)
    if [[ -z "$pids" ]]; then
        echo "no cluster running under $DIR"
        return
    fi
    # shellcheck disable=SC2086  # one PID per word
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 20); do
        [[ -z "$(our_pids)" ]] && break
        sleep 0.5
    done
    pids=$(our_pids)
    # shellcheck disable=SC2086
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
    echo "stopped the cluster under $DIR"
}

case "${1:-}" in
    start) start "${2:-2}" ;;
    stop) stop ;;
    status) "$RAY_BIN" status --address="127.0.0.1:$PORT" ;;
    *) echo "usage: $0 start [N] | status | stop" >&2; exit 2 ;;
esac
