# hosts.sh: test hosts as Linux network namespaces (sourced after lib.sh, not run).
# `fr_hosts_up N` makes N "hosts": network namespaces <prefix>-h1..hN, each
# with one interface (eth0, address 10.77.0.i/24) whose veth peer sits on a
# bridge in a further namespace <prefix>-br. Everything lives in namespaces
# this test run creates: no address, link or bridge is added to the machine's
# own namespace, and no traffic can reach any other address. The prefix holds
# the shell's pid, so concurrent runs never collide (each run has its own
# bridge, so their equal addresses never meet).
#
# Open MPI launches across the hosts as across cluster nodes: mpirun runs in
# host 1 (like the first node of an allocation); its rsh launcher starts an
# orted on every other host through an agent script that does what ssh would,
# `ip netns exec <host> sh -c CMD`; MPI traffic and the runtime's own traffic
# are TCP over eth0 only (pml ob1, btl tcp,self: no shared memory between
# hosts, even though they share one kernel and one file system, which plays
# the part of a cluster's shared file system).
#
#   fr_hosts_up N          make the hosts, or print "SKIP: reason" and exit 77
#                          (not root, no ip binary, no namespace/veth/bridge
#                          support); installs the teardown on EXIT, INT, TERM
#   fr_mpirun "1 2" ARGS   mpirun ARGS on hosts 1 and 2 (one slot each)
#   fr_host_kill I         SIGKILL every process in host I (a lost host)
#   fr_hosts_down          remove every namespace (idempotent; the traps call it)
# Variables: FR_HOSTS_PREFIX, FR_HOSTS_IF (eth0), FR_HOSTS_ADDR[i] (10.77.0.i),
# FR_HOSTS_NS[i] (namespace of host i), FR_HOSTS_AGENT (the rsh agent script),
# FR_HOSTS_CTL_NS and FR_HOSTS_CTL_ADDR (10.77.0.254, on the bridge itself:
# for a service every host reaches but none holds, such as a batch
# system's controller; it is lost with no host).
FR_HOSTS_PREFIX="facrnn$$"
FR_HOSTS_IF=eth0
FR_HOSTS_NS=()
FR_HOSTS_ADDR=()
FR_HOSTS_AGENT=""
FR_HOSTS_CTL_NS="$FR_HOSTS_PREFIX-br"
FR_HOSTS_CTL_ADDR=10.77.0.254
_FR_HOSTS_ALL=() # every namespace made so far, bridge included, for the teardown
_FR_HOSTS_PREV_EXIT=""

_fr_hosts_skip() { echo "SKIP: test hosts: $*"; fr_hosts_down; exit 77; }

# The namespace's processes, then the namespace. Killed processes release the
# namespace (and its veth end, which takes the peer with it) as they exit.
fr_hosts_down() {
  local ns
  for ns in "${_FR_HOSTS_ALL[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
  done
  _FR_HOSTS_ALL=()
}

_fr_hosts_trap() {
  local sig="$1"
  fr_hosts_down
  if [ "$sig" = EXIT ]; then eval "$_FR_HOSTS_PREV_EXIT"; return; fi
  trap - "$sig"
  exit $((128 + $(kill -l "$sig")))
}

_fr_hosts_add_ns() {
  ip netns add "$1" 2>/dev/null || return 1
  _FR_HOSTS_ALL+=("$1")
}

fr_hosts_up() {
  local n="$1" i br="$FR_HOSTS_PREFIX-br" ns err
  [ "$(id -u)" -eq 0 ] || _fr_hosts_skip "network namespaces need root (uid $(id -u))"
  command -v ip >/dev/null || _fr_hosts_skip "no 'ip' binary (iproute2)"
  command -v mpirun >/dev/null || _fr_hosts_skip "no mpirun"
  # The teardown runs on every way out; the EXIT trap set before (lib.sh's
  # removal of $WORK) still runs after it.
  eval "set -- $(trap -p EXIT)"
  _FR_HOSTS_PREV_EXIT="${3:-}"
  trap '_fr_hosts_trap EXIT' EXIT
  trap '_fr_hosts_trap INT' INT
  trap '_fr_hosts_trap TERM' TERM
  err="$(ip netns add "$br" 2>&1)" || _fr_hosts_skip "cannot create a network namespace: $err"
  _FR_HOSTS_ALL+=("$br")
  err="$(ip -n "$br" link add br0 type bridge 2>&1 && ip -n "$br" link set br0 up 2>&1)" \
    || _fr_hosts_skip "cannot create a bridge: $err"
  ip -n "$br" addr add "$FR_HOSTS_CTL_ADDR/24" dev br0
  ip -n "$br" link set lo up
  for ((i = 1; i <= n; ++i)); do
    ns="$FR_HOSTS_PREFIX-h$i"
    _fr_hosts_add_ns "$ns" || _fr_hosts_skip "cannot create namespace $ns"
    err="$(ip -n "$ns" link add "$FR_HOSTS_IF" type veth peer name "v$i" netns "$br" 2>&1)" \
      || _fr_hosts_skip "cannot create a veth pair: $err"
    ip -n "$br" link set "v$i" master br0
    ip -n "$br" link set "v$i" up
    ip -n "$ns" addr add "10.77.0.$i/24" dev "$FR_HOSTS_IF"
    ip -n "$ns" link set "$FR_HOSTS_IF" up
    ip -n "$ns" link set lo up
    FR_HOSTS_NS[i]="$ns"
    FR_HOSTS_ADDR[i]="10.77.0.$i"
  done
  # The rsh agent: `agent HOST CMD...` runs CMD in HOST's namespace, as ssh
  # would (the launcher hands over a shell command line). HOST is an address.
  FR_HOSTS_AGENT="$WORK/netns-agent"
  {
    echo '#!/bin/sh'
    echo 'h="$1"; shift'
    echo 'case "$h" in'
    for ((i = 1; i <= n; ++i)); do echo "  ${FR_HOSTS_ADDR[i]}) ns=${FR_HOSTS_NS[i]} ;;"; done
    echo '  *) echo "netns-agent: unknown host $h" >&2; exit 255 ;;'
    echo 'esac'
    echo 'exec ip netns exec "$ns" /bin/sh -c "$*"'
  } > "$FR_HOSTS_AGENT"
  chmod +x "$FR_HOSTS_AGENT"
  # Host 1 reaches every other host over the bridge: a TCP connect to a port
  # nobody listens on, refused by the peer's kernel, proves the route. The
  # links take a moment to come up (the first tries time out).
  local t ok
  for ((i = 2; i <= n; ++i)); do
    ok=0
    for ((t = 0; t < 30; ++t)); do
      err="$(ip netns exec "${FR_HOSTS_NS[1]}" timeout 1 bash -c "exec 3<>/dev/tcp/${FR_HOSTS_ADDR[i]}/9" 2>&1)" || true
      if grep -q "refused" <<<"$err"; then ok=1; break; fi
    done
    [ "$ok" = 1 ] || _fr_hosts_skip "host 1 cannot reach ${FR_HOSTS_ADDR[i]} over the bridge"
  done
}

# fr_mpirun "I J ..." ARGS...: mpirun ARGS with one slot on each listed host,
# launched from the first of them, killed after FR_MPIRUN_TIMEOUT seconds
# (default 600) so a hung run fails the test instead of blocking it. The hosts
# share the machine's cores, which no host can see: mpi_yield_when_idle makes a
# waiting rank yield its core instead of spinning (without it, 3 ranks on 2
# cores made a fit 7 times slower).
fr_mpirun() {
  local hosts="$1" hf i first="" pid t rc; shift
  hf="$WORK/hostfile.${hosts// /_}"
  : > "$hf"
  for i in $hosts; do
    [ -n "$first" ] || first="$i"
    echo "${FR_HOSTS_ADDR[i]} slots=1" >> "$hf"
  done
  ip netns exec "${FR_HOSTS_NS[first]}" mpirun --hostfile "$hf" --map-by node \
    --mca plm_rsh_agent "$FR_HOSTS_AGENT" --mca plm_rsh_no_tree_spawn 1 \
    --mca pml ob1 --mca btl tcp,self --mca btl_tcp_if_include "$FR_HOSTS_IF" \
    --mca oob_tcp_if_include "$FR_HOSTS_IF" --mca mpi_yield_when_idle 1 "$@" &
  pid=$!
  for ((t = 0; t < 10 * ${FR_MPIRUN_TIMEOUT:-600}; ++t)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    _fr_hosts_stacks >&2
    kill -TERM "$pid" 2>/dev/null; sleep 2; kill -KILL "$pid" 2>/dev/null
    for i in $hosts; do ip netns pids "${FR_HOSTS_NS[i]}" | xargs -r kill -9 2>/dev/null; done
    wait "$pid" 2>/dev/null
    return 124
  fi
  rc=0; wait "$pid" || rc=$?
  return "$rc"
}

# What a hung mpirun was doing, for the log: every process in every host and
# the stack of each (gdb, where it is installed).
_fr_hosts_stacks() {
  local i p
  echo "fr_mpirun: timed out after ${FR_MPIRUN_TIMEOUT:-600} s; processes in the hosts:"
  for ((i = 1; i < ${#FR_HOSTS_NS[@]} + 1; ++i)); do
    [ -n "${FR_HOSTS_NS[i]:-}" ] || continue
    for p in $(ip netns pids "${FR_HOSTS_NS[i]}"); do
      echo "  host $i: $(ps -o pid=,stat=,etime=,args= -p "$p" | cut -c1-160)"
      if command -v gdb >/dev/null && grep -q facrnn "/proc/$p/cmdline" 2>/dev/null; then
        timeout 20 gdb -p "$p" -batch -ex "thread apply all bt 12" 2>/dev/null | grep -E "^#|^Thread" | sed 's/^/      /' | head -40
      fi
    done
  done
}

# fr_host_kill I: the host is lost: SIGKILL every process in its namespace
# (the orted and the ranks it started); prints how many.
fr_host_kill() {
  local pids
  pids="$(ip netns pids "${FR_HOSTS_NS[$1]}")"
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  wc -w <<<"$pids"
}
