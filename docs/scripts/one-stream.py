#!/usr/bin/env python3
"""One TCP stream, the client of the one-stream rows (issue 15): 64 KiB
send() calls to a discard server, or to an echo server with the echoed
bytes read back and checked. Prints one JSON line with bytes/s.

    one-stream.py HOST PORT discard|echo BYTES

Run it inside a namespace (`ip netns exec`, `smrnet lab exec`) so it only
reaches addresses that namespace owns; every call has a 30 s timeout.
"""
import json, socket, sys, threading, time

host, port, mode, total = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
chunk = bytes((i * 7 + i // 251) & 0xFF for i in range(64 * 1024))
s = socket.create_connection((host, port), timeout=30)
s.settimeout(30)
start = time.monotonic()

def send_all():
    sent = 0
    while sent < total:
        n = min(len(chunk), total - sent)
        s.sendall(chunk[:n])
        sent += n
    s.shutdown(socket.SHUT_WR)

if mode == "echo":
    t = threading.Thread(target=send_all)
    t.start()
    got = 0
    ok = True
    while got < total:
        b = s.recv(256 * 1024)
        if not b:
            break
        at = got % len(chunk)
        # Checks the first bytes of every read (cheap in Python).
        k = min(len(b), len(chunk) - at, 64)
        ok = ok and b[:k] == chunk[at:at + k]
        got += len(b)
    t.join()
else:
    send_all()
    s.recv(16)  # the server's close: everything arrived
    got, ok = total, True
secs = time.monotonic() - start
print(json.dumps({"mode": mode, "bytes": got, "ok": ok and got == total,
                  "seconds": round(secs, 3), "gbit_per_s": round(got * 8 / secs / 1e9, 2)}))
