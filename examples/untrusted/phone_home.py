# Tries to reach the network: under the no-network profile socket() itself is refused.
import socket

try:
    socket.create_connection(("127.0.0.1", 9), timeout=1)
    print("connected?!")
except OSError as e:
    print("network attempt failed: %s" % e)
    raise SystemExit(3)
