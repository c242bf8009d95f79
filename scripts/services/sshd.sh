#!/usr/bin/env bash
# A throw-away OpenSSH server on 127.0.0.1, for the R tests of ssh_config().
#
#   sshd.sh start DIR   creates DIR (keys, config), starts sshd on a free port of 127.0.0.1,
#                       checks that a key login runs a command, and writes:
#                         DIR/port          the port
#                         DIR/ssh           ssh with the throw-away key and no host-key prompts
#                         DIR/ssh-isolated  the same, but each connection is served by
#                                           `sshd -i` in a fresh network namespace of its own:
#                                           commands run there reach this machine's 127.0.0.1
#                                           only through the connection's forwarded ports
#                                           (for tunnel tests; needs unshare and ip)
#   sshd.sh stop DIR    stops that server and every process it started.
#
# Needs root (sshd's privilege separation) and Debian's openssh-server and openssh-client.
# Exits non-zero, saying why, if the server cannot be started.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
dir=$(realpath -m "$dir")

# Kills a process and its descendants, by id (children first found, then signalled).
kill_tree() {
  local pid=$1 child
  for child in $(ps -o pid= --ppid "$pid" 2>/dev/null); do kill_tree "$child"; done
  kill "$pid" 2>/dev/null || true
}

stop() {
  if [[ -f "$dir/sshd.pid" ]]; then
    local pid
    pid=$(cat "$dir/sshd.pid")
    kill_tree "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$dir/sshd.pid"
  fi
  # Sessions outlive the listener, and isolated servers are children of ssh clients: both are
  # found by this server's unique directory in their command lines, and ended by id.
  local lines p args
  lines=$(ps -eo pid=,args=)
  while read -r p args; do
    case "$args" in
      *"$dir/"*) [[ "$p" == "$$" ]] || kill "$p" 2>/dev/null || true ;;
    esac
  done <<< "$lines"
}

start() {
  local sshd=/usr/sbin/sshd
  [[ -x "$sshd" ]] || { echo "sshd.sh: $sshd not found: install openssh-server (scripts/deps.sh)" >&2; exit 1; }
  command -v ssh >/dev/null || { echo "sshd.sh: ssh not found: install openssh-client" >&2; exit 1; }
  command -v ssh-keygen >/dev/null || { echo "sshd.sh: ssh-keygen not found" >&2; exit 1; }
  [[ $(id -u) == 0 ]] || { echo "sshd.sh: must run as root (sshd privilege separation)" >&2; exit 1; }
  mkdir -p /run/sshd "$dir"
  chmod 755 "$dir"
  rm -f "$dir/host_key" "$dir/host_key.pub" "$dir/client_key" "$dir/client_key.pub"
  ssh-keygen -q -t ed25519 -N '' -C mirai-test-host -f "$dir/host_key"
  ssh-keygen -q -t ed25519 -N '' -C mirai-test-client -f "$dir/client_key"
  cp "$dir/client_key.pub" "$dir/authorized_keys"
  chmod 600 "$dir/authorized_keys"

  cat > "$dir/ssh" <<EOF
#!/bin/sh
exec ssh -F /dev/null -i '$dir/client_key' -o IdentitiesOnly=yes -o BatchMode=yes \\
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "\$@"
EOF
  cat > "$dir/ssh-isolated" <<EOF
#!/bin/sh
exec ssh -F /dev/null -i '$dir/client_key' -o IdentitiesOnly=yes -o BatchMode=yes \\
  -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \\
  -o ExitOnForwardFailure=yes \\
  -o "ProxyCommand=unshare -n sh -c 'ip link set lo up && exec $sshd -i -f $dir/sshd_config -E $dir/isolated.log'" "\$@"
EOF
  chmod 755 "$dir/ssh" "$dir/ssh-isolated"

  local try port pid
  for try in 1 2 3 4 5 6 7 8; do
    port=$((20000 + RANDOM % 40000))
    cat > "$dir/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile none
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AuthorizedKeysFile $dir/authorized_keys
AllowTcpForwarding yes
GatewayPorts no
X11Forwarding no
PrintMotd no
MaxStartups 100
MaxSessions 100
EOF
    "$sshd" -t -f "$dir/sshd_config" || { echo "sshd.sh: sshd rejects the configuration" >&2; exit 1; }
    setsid "$sshd" -D -e -f "$dir/sshd_config" </dev/null >>"$dir/sshd.log" 2>&1 &
    pid=$!
    echo "$pid" > "$dir/sshd.pid"
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      if "$dir/ssh" -o ConnectTimeout=2 -p "$port" 127.0.0.1 true </dev/null 2>>"$dir/sshd.log"; then
        echo "$port" > "$dir/port"
        echo "sshd listening on 127.0.0.1:$port (pid $pid), files in $dir"
        return 0
      fi
      sleep 0.1
    done
    stop
  done
  echo "sshd.sh: could not start sshd on 127.0.0.1; its log:" >&2
  tail -20 "$dir/sshd.log" >&2 || true
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
