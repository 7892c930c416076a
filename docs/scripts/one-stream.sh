#!/bin/sh
# One stream to discard and echo: the kernel over a veth pair between two
# namespaces, then smrnetd (lab) with --offload on and off, same client
# (one-stream.py). Run as root from the workspace root after
# `cargo build --release -p tools`. Everything it creates it removes.
# Usage: one-stream.sh [DISCARD_BYTES] [ECHO_BYTES]
set -eu
D=${1:-1073741824}
E=${2:-314572800}
HERE=$(dirname "$0")
PY="python3 $HERE/one-stream.py"
SMRNET=./target/release/smrnet
A=os-cli-$$ B=os-srv-$$
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
trap cleanup EXIT INT TERM
ip netns add $A; ip netns add $B
ip link add os-a-$$ netns $A type veth peer name os-b-$$ netns $B
ip -n $A addr add 198.19.9.1/24 dev os-a-$$; ip -n $A link set os-a-$$ up; ip -n $A link set lo up
ip -n $B addr add 198.19.9.2/24 dev os-b-$$; ip -n $B link set os-b-$$ up; ip -n $B link set lo up
# Kernel discard (9) and echo (7) servers, one connection each, bounded.
ip netns exec $B python3 -c '
import socket, threading
def serve(port, echo):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("198.19.9.2", port)); l.listen(4); l.settimeout(120)
    c, _ = l.accept(); c.settimeout(60)
    while True:
        b = c.recv(256 * 1024)
        if not b: break
        if echo: c.sendall(b)
    c.close()
for p, e in ((9, False), (7, True)):
    threading.Thread(target=serve, args=(p, e)).start()
' &
sleep 1
echo "kernel-veth discard: $(ip netns exec $A $PY 198.19.9.2 9 discard $D)"
echo "kernel-veth echo:    $(ip netns exec $A $PY 198.19.9.2 7 echo $E)"
wait
for mode in on off; do
  $SMRNET lab up --workers 2 -- --offload $mode >/dev/null
  echo "smrnetd offload=$mode discard: $($SMRNET lab exec -- $PY 198.18.0.2 9 discard $D)"
  echo "smrnetd offload=$mode echo:    $($SMRNET lab exec -- $PY 198.18.0.2 7 echo $E)"
  $SMRNET lab down >/dev/null
done
