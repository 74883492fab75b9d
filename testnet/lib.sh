# testnet/lib.sh: a LAN of network namespaces on one machine, each host with its own D-Bus
# system bus and avahi-daemon, and a dnsmasq for a test zone. Source it with T (a fresh
# scratch directory) and PFX (a short, unique namespace prefix) set.
#
# Safety: every daemon runs inside a namespace whose only interfaces are lo and one veth end
# created inside it (nothing appears in the root namespace), with no default route: only
# $SUBNET.0/24 is reachable. Teardown signals only the PIDs recorded here, after checking their
# command names. Every wait is bounded. (Recipe: ../shared/research/discovery-spike.md.)

SUBNET=${SUBNET:-10.213.0}
NET_HOSTS=${NET_HOSTS:-0}

ms() { echo $(( $(date +%s%N) / 1000000 )); }
host_dir() { echo "$T/$PFX$1"; }
bus() { echo "unix:path=$(host_dir "$1")/system_bus_socket"; }
# in_host N CMD...: run CMD in host N's namespace, on its bus (foreground)
in_host() { local n=$1; shift; ip netns exec "$PFX$n" env DBUS_SYSTEM_BUS_ADDRESS="$(bus "$n")" "$@"; }

# net_up N: the bridge namespace and hosts 1..N, each with lo + v0 ($SUBNET.i/24) and a D-Bus.
net_up() {
  local n=$1 i d
  NET_HOSTS=$n
  ip netns add "${PFX}br"
  ip -n "${PFX}br" link add br0 type bridge
  ip -n "${PFX}br" link set br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
  ip -n "${PFX}br" link set br0 up
  for i in $(seq 1 "$n"); do
    d=$(host_dir "$i"); mkdir -p "$d/run"
    [ ! -e "$d/system_bus_socket" ] || { echo "stale $d/system_bus_socket: use a fresh T" >&2; return 1; }
    ip netns add "$PFX$i"
    ip link add v0 netns "$PFX$i" type veth peer name p$i netns "${PFX}br"
    ip -n "${PFX}br" link set p$i master br0
    ip -n "${PFX}br" link set p$i up
    ip -n "$PFX$i" link set lo up
    ip -n "$PFX$i" addr add "$SUBNET.$i/24" dev v0
    ip -n "$PFX$i" link set v0 up
    cat > "$d/dbus.conf" <<XML
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$d/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>/usr/share/dbus-1/system.d/avahi-dbus.conf</include>
</busconfig>
XML
    cat > "$d/avahi-daemon.conf" <<INI
[server]
host-name=$PFX$i
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces=v0
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
publish-a-on-ipv6=no
[reflector]
enable-reflector=no
[rlimits]
INI
    # --fork returns once the socket listens
    ip netns exec "$PFX$i" dbus-daemon --config-file="$d/dbus.conf" --fork --nopidfile --print-pid=1 --nosyslog > "$d/dbus.pid"
  done
}

# start_avahi N: host N's avahi-daemon (its own session, so job-control signals miss it).
start_avahi() {
  local d; d=$(host_dir "$1")
  mkdir -p /run/avahi-daemon
  setsid ip netns exec "$PFX$1" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DBUS_SYSTEM_BUS_ADDRESS="$(bus "$1")" \
    sh -c 'mount --bind "$1/run" /run/avahi-daemon && exec avahi-daemon -f "$1/avahi-daemon.conf" --no-drop-root --no-chroot --no-rlimits --no-proc-title' _ "$d" \
    >> "$d/avahi.log" 2>&1 < /dev/null &
  echo $! > "$d/avahi.pid"
  disown $!
}

# wait_avahi N: until host N's daemon reports AVAHI_SERVER_RUNNING (10 s at most).
wait_avahi() {
  local d st; d=$(host_dir "$1")
  for _ in $(seq 1 100); do
    st=$(timeout 2 dbus-send --bus="$(bus "$1")" --print-reply=literal --dest=org.freedesktop.Avahi / org.freedesktop.Avahi.Server.GetState 2>/dev/null | awk '{print $2}') || true
    [ "$st" = 2 ] && return 0
    sleep 0.1
  done
  echo "avahi in $PFX$1 not running" >&2; cat "$d/avahi.log" >&2; return 1
}

# stop_pid FILE COMM [SIGNAL]: signal the recorded PID if it still runs COMM.
stop_pid() {
  local p; p=$(cat "$1" 2>/dev/null) || return 0
  [ -n "$p" ] && [ "$(ps -o comm= -p "$p" 2>/dev/null)" = "$2" ] && kill -"${3:-TERM}" "$p" 2>/dev/null
  return 0
}

# wait_gone FILE COMM: up to 3 s for the recorded process to exit.
wait_gone() {
  local p; p=$(cat "$1" 2>/dev/null) || return 0
  for _ in $(seq 1 30); do [ "$(ps -o comm= -p "$p" 2>/dev/null)" = "$2" ] || return 0; sleep 0.1; done
  return 1
}

stop_avahi() { stop_pid "$(host_dir "$1")/avahi.pid" avahi-daemon TERM; wait_gone "$(host_dir "$1")/avahi.pid" avahi-daemon; }

# start_dnsmasq N CONF: a dnsmasq in host N's namespace (authoritative for the test zone, no upstream).
start_dnsmasq() {
  local d; d=$(host_dir "$1")
  setsid ip netns exec "$PFX$1" dnsmasq --conf-file="$2" --keep-in-foreground --pid-file= > "$d/dnsmasq.log" 2>&1 < /dev/null &
  echo $! > "$d/dnsmasq.pid"
  disown $!
}

# signal_host N SIGNAL: every process recorded for host N (nodes, the dishonest node, avahi,
# dnsmasq, D-Bus), each only while it still runs the program recorded.
signal_host() {
  local d f; d=$(host_dir "$1")
  for f in "$d"/node*.pid; do [ -e "$f" ] && stop_pid "$f" thingdata "$2"; done
  stop_pid "$d/byzantine.pid" thingdata-byzan "$2"
  stop_pid "$d/avahi.pid" avahi-daemon "$2"
  stop_pid "$d/dnsmasq.pid" dnsmasq "$2"
  stop_pid "$d/dbus.pid" dbus-daemon "$2"
}

# net_down: everything net_up and the starters made, recorded PIDs only.
net_down() {
  local i
  for i in $(seq 1 "$NET_HOSTS"); do signal_host "$i" TERM; done
  sleep 0.5
  for i in $(seq 1 "$NET_HOSTS"); do
    signal_host "$i" KILL
    ip netns del "$PFX$i" 2>/dev/null
  done
  ip netns del "${PFX}br" 2>/dev/null
  true
}

# Nodes. `bin` and `admin` name the thingdata and thingdata-admin binaries.
# start_node HOST NAME [SETTING=VALUE...]: a node in HOST's namespace on port 8000.
start_node() {
  local h=$1 name=$2; shift 2
  local d; d=$(host_dir "$h")/$name
  mkdir -p "$d"
  setsid ip netns exec "$PFX$h" env DBUS_SYSTEM_BUS_ADDRESS="$(bus "$h")" THINGDATA_BASE_URL="http://$SUBNET.$h:8000" \
    THINGDATA_SYNC_INTERVAL=2 THINGDATA_PEX_RANGES="$SUBNET.0/24" THINGDATA_LOG_LEVEL=info "$@" \
    "$bin" serve --host 0.0.0.0 --port 8000 --data-dir "$d" --name "$name" >> "$d.log" 2>&1 < /dev/null &
  echo $! > "$(host_dir "$h")/node-$name.pid"
  disown $!  # not a job of the caller: no "Killed" notices, and a bare `wait` does not wait for it
  for _ in $(seq 1 100); do
    in_host "$h" curl -fs http://127.0.0.1:8000/health/ready >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "node $name on host $h did not become ready"; cat "$d.log"; return 1
}
stop_node() { stop_pid "$(host_dir "$1")/node-$2.pid" thingdata TERM; wait_gone "$(host_dir "$1")/node-$2.pid" thingdata; }
adm() { local h=$1 name=$2; shift 2; in_host "$h" "$admin" "$@" --data-dir "$(host_dir "$h")/$name" --json; }
node_id() { adm "$1" "$2" node info | python3 -c 'import json,sys; print(json.load(sys.stdin)["compact_id"])'; }
# has_peer HOST NAME ID SOURCE: the node lists ID as an active peer found (also) by SOURCE
has_peer() {
  adm "$1" "$2" peers list 2>/dev/null | python3 -c '
import json, sys
peers = json.load(sys.stdin)
sys.exit(0 if any(p["node_id"] == sys.argv[1] and p["state"] == "active" and sys.argv[2] in p["sources"] for p in peers) else 1)' "$3" "$4"
}
# wait_for SECONDS CMD...: polls every 100 ms; prints the milliseconds it took
wait_for() {
  local limit=$1; shift
  local t0; t0=$(ms)
  while [ $(( $(ms) - t0 )) -lt $((limit * 1000)) ]; do
    if "$@"; then echo $(( $(ms) - t0 )); return 0; fi
    sleep 0.1
  done
  return 1
}
# can_make_namespaces: whether this machine lets us (root, iproute2, the kernel's netns).
can_make_namespaces() {
  [ "$(id -u)" = 0 ] && command -v ip >/dev/null && command -v avahi-daemon >/dev/null && command -v dnsmasq >/dev/null || return 1
  local probe="tdprobe$$"
  ip netns add "$probe" 2>/dev/null || return 1
  ip netns del "$probe"
}
