# testnet/common.sh: the network's state between `up`, `run` and `down`, and the node helpers
# the scenarios share. Sourced by testnet/up, testnet/down and testnet/run.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TESTNET_DIR=${TESTNET_DIR:-/tmp/thingdata-testnet}
. "$root/testnet/lib.sh"

# The binaries: BIN_DIR, or the debug build (built when missing).
find_binaries() {
  if [ -z "${BIN_DIR:-}" ]; then
    (cd "$root" && for p in thingdata thingdata-admin thingdata-byzantine; do swift build --product "$p" >/dev/null || return 1; done) || return 1
    BIN_DIR=$(cd "$root" && swift build --show-bin-path)
  fi
  bin=$BIN_DIR/thingdata admin=$BIN_DIR/thingdata-admin byzantine=$BIN_DIR/thingdata-byzantine
  [ -x "$bin" ] && [ -x "$admin" ] && [ -x "$byzantine" ] || { echo "testnet: binaries missing in $BIN_DIR" >&2; return 1; }
}

save_state() {
  cat > "$TESTNET_DIR/state" <<EOF
T=$T
PFX=$PFX
NET_HOSTS=$NET_HOSTS
BIN_DIR=$BIN_DIR
PG_URL=${PG_URL:-}
EOF
}
load_state() {
  [ -f "$TESTNET_DIR/state" ] || return 1
  . "$TESTNET_DIR/state"
  export T PFX NET_HOSTS BIN_DIR
}

# Per-host node named "node". Its settings come from MODE:
#   mdns: mDNS only; dns: the test zone only; pex: seeded with the next host, peer exchange only;
#   all: mDNS, DNS and peer exchange.
mode_settings() { # mode_settings MODE HOST
  local mode=$1 h=$2 next=$(( $2 % NET_HOSTS + 1 ))
  case $mode in
    mdns) echo "THINGDATA_MDNS=true THINGDATA_PEX=false" ;;
    dns)  echo "THINGDATA_MDNS=false THINGDATA_PEX=false THINGDATA_DNS_DOMAINS=testnet.example THINGDATA_DNS_SERVER=$SUBNET.1:5399" ;;
    pex)  echo "THINGDATA_MDNS=false THINGDATA_PEX=true THINGDATA_PEX_INTERVAL=60 THINGDATA_SEEDS=$SUBNET.$next:8000" ;;
    all)  echo "THINGDATA_MDNS=true THINGDATA_PEX=true THINGDATA_PEX_INTERVAL=60 THINGDATA_DNS_DOMAINS=testnet.example THINGDATA_DNS_SERVER=$SUBNET.1:5399" ;;
  esac
}

db_settings() { # db_settings HOST: PostgreSQL (a database per node) when the network has one
  [ -n "${PG_URL:-}" ] && echo "THINGDATA_DATABASE_URL=${PG_URL/\/postgres\?/\/node$1?}"
}

# start_host H MODE [SETTING=VALUE...]: host H's node, with its mode's settings.
start_host() {
  local h=$1 mode=$2; shift 2
  # shellcheck disable=SC2046
  start_node "$h" node $(mode_settings "$mode" "$h") $(db_settings "$h") THINGDATA_MAX_PEERS=100 "$@"
}
stop_host() { stop_node "$1" node; }
kill_host() { stop_pid "$(host_dir "$1")/node-node.pid" thingdata KILL; wait_gone "$(host_dir "$1")/node-node.pid" thingdata; }
id_of() { cat "$(host_dir "$1")/node.id"; }
url_of() { echo "http://$SUBNET.$1:8000"; }
# api H METHOD PATH [JSON]: the v1 API of host H's node, from inside its namespace (loopback: no token).
api() {
  local h=$1 method=$2 path=$3 body=${4:-}
  if [ -n "$body" ]; then
    in_host "$h" curl -s -m 20 -X "$method" -H 'Content-Type: application/json' -H 'X-Confirm-Delete: true' --data "$body" "http://127.0.0.1:8000$path"
  else
    in_host "$h" curl -s -m 20 -X "$method" -H 'X-Confirm-Delete: true' "http://127.0.0.1:8000$path"
  fi
}
json_id() { python3 -c 'import json,sys; print(json.load(sys.stdin).get("id",""))' 2>/dev/null; }

# init_hosts: a data directory, key and config per host (node ids known before any start, for the zone).
init_hosts() {
  local h d
  for h in $(seq 1 "$NET_HOSTS"); do
    d=$(host_dir "$h")/node
    rm -rf "$d"
    "$bin" init --data-dir "$d" --name "host$h" --json > "$(host_dir "$h")/init.json" 2>/dev/null || return 1
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["node_id"].replace("-",""))' "$(host_dir "$h")/init.json" > "$(host_dir "$h")/node.id"
  done
}

# has_node H: whether host H runs thingdata (not in NO_NODE)
has_node() { case " ${NO_NODE:-} " in *" $1 "*) return 1 ;; esac; return 0; }

# start_zone: dnsmasq in host 1's namespace serves testnet.example: a PTR per host, each
# instance with SRV and TXT id=, and the hosts' A records.
start_zone() {
  local h conf=$T/zone.conf
  {
    echo "port=5399"; echo "listen-address=$SUBNET.1"; echo "bind-interfaces"; echo "no-resolv"; echo "no-hosts"; echo "no-poll"
    echo "local=/testnet.example/"; echo "local-ttl=60"
    for h in $(seq 1 "$NET_HOSTS"); do
      has_node "$h" || continue
      echo "ptr-record=_thingdata._tcp.testnet.example,host$h._thingdata._tcp.testnet.example"
      echo "srv-host=host$h._thingdata._tcp.testnet.example,host$h.testnet.example,8000,0,0"
      echo "txt-record=host$h._thingdata._tcp.testnet.example,\"id=$(id_of "$h")\",\"v=1\""
      echo "host-record=host$h.testnet.example,$SUBNET.$h"
    done
  } > "$conf"
  start_dnsmasq 1 "$conf"
  for _ in $(seq 1 50); do
    in_host 1 dig +short +time=1 +tries=1 -p 5399 @"$SUBNET.1" SRV host1._thingdata._tcp.testnet.example 2>/dev/null | grep -q 8000 && return 0
    sleep 0.1
  done
  echo "dnsmasq did not answer"; cat "$(host_dir 1)/dnsmasq.log"; return 1
}

# start_postgres: one server for the whole network, in a namespace of its own at $SUBNET.254.
start_postgres() {
  ip netns add "${PFX}db"
  ip link add v0 netns "${PFX}db" type veth peer name pdb netns "${PFX}br"
  ip -n "${PFX}br" link set pdb master br0
  ip -n "${PFX}br" link set pdb up
  ip -n "${PFX}db" link set lo up
  ip -n "${PFX}db" addr add "$SUBNET.254/24" dev v0
  ip -n "${PFX}db" link set v0 up
  PG_URL=$(ip netns exec "${PFX}db" "$root/scripts/postgres-test-server" start "$T/pg" 5432 "$SUBNET.254") || return 1
  local h
  for h in $(seq 1 "$NET_HOSTS"); do ip netns exec "${PFX}db" psql "$PG_URL" -qc "CREATE DATABASE node$h" >/dev/null || return 1; done
}
stop_postgres() {
  [ -d "$T/pg" ] && "$root/scripts/postgres-test-server" stop "$T/pg"
  ip netns del "${PFX}db" 2>/dev/null
  true
}

# Checks, over the admin API of each host (inside its namespace).
peers_json() { adm "$1" node peers list 2>/dev/null; }
# mesh_complete HOSTS...: every host lists every other as an active peer trusted verified or above
mesh_complete() {
  local h others
  for h in "$@"; do
    others=$(for o in "$@"; do [ "$o" != "$h" ] && id_of "$o"; done | tr '\n' ,)
    peers_json "$h" | python3 -c '
import json, sys
want = [x for x in sys.argv[1].split(",") if x]
good = {p["node_id"] for p in json.load(sys.stdin) if p["state"] == "active" and p["trust"] in ("verified", "trusted", "preferred")}
sys.exit(0 if all(w in good for w in want) else 1)' "$others" || return 1
  done
}
digest_of() { adm "$1" node node digest 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["revisions"], d["revision_digest"], d["view_digest"], d["conflict_digest"])'; }
# converged HOSTS...: identical revisions, views and conflicts everywhere
converged() {
  local first="" h d
  for h in "$@"; do
    d=$(digest_of "$h") || return 1
    [ -n "$d" ] || return 1
    if [ -z "$first" ]; then first=$d; elif [ "$d" != "$first" ]; then return 1; fi
  done
}
revisions_on() { digest_of "$1" | cut -d' ' -f1; }
# bytes_in HOSTS...: federation bytes received by all of them, from every peer
bytes_in() {
  local h total=0 b
  for h in "$@"; do
    b=$(peers_json "$h" | python3 -c 'import json,sys; print(sum(p.get("bytes_in", 0) for p in json.load(sys.stdin)))')
    total=$((total + b))
  done
  echo "$total"
}
