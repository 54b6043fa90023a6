#!/usr/bin/env bash
# The second Docker engine (tests/docker/second_docker.sh) reached over SSH, as a remote
# host is: an sshd of its own on 127.0.0.1:2222 whose sessions talk to that engine, a key
# made for it, and an `ssh` wrapper that uses the key and trusts the host key (the docker
# CLI and Compose run the `ssh` they find on PATH). Nothing of the machine's own SSH
# set-up is touched.
#   tests/docker/ssh_docker.sh start   prints the folder to put first on PATH
#   tests/docker/ssh_docker.sh stop
# The DOCKER_HOST value is ssh://root@127.0.0.1:2222.
set -euo pipefail
dir=/var/lib/pcr-ssh
port=2222
alive() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
case "${1:-}" in
  start)
    engine=$("$(dirname "$0")/second_docker.sh" start)
    mkdir -p "$dir/bin" /run/sshd
    chmod 700 "$dir"
    [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    [ -f "$dir/client_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key"
    cp "$dir/client_key.pub" "$dir/authorized_keys"
    cat > "$dir/sshd_config" << CONF
Port $port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
SetEnv DOCKER_HOST=$engine
CONF
    cat > "$dir/bin/ssh" << WRAP
#!/bin/sh
exec /usr/bin/ssh -F none -i $dir/client_key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no \\
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR "\$@"
WRAP
    chmod +x "$dir/bin/ssh"
    if ! { [ -f "$dir/sshd.pid" ] && alive "$(cat "$dir/sshd.pid")"; }; then
      /usr/sbin/sshd -f "$dir/sshd_config" -E "$dir/sshd.log"
    fi
    for _ in $(seq 40); do
      PATH="$dir/bin:$PATH" DOCKER_HOST=ssh://root@127.0.0.1:$port docker info > /dev/null 2>&1 && break
      sleep 0.25
    done
    PATH="$dir/bin:$PATH" DOCKER_HOST=ssh://root@127.0.0.1:$port docker info > /dev/null
    echo "$dir/bin"
    ;;
  stop)
    if [ -f "$dir/sshd.pid" ]; then kill "$(cat "$dir/sshd.pid")" 2> /dev/null || true; rm -f "$dir/sshd.pid"; fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
