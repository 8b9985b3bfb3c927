# Writes without end; the output limit stops it.
import sys

line = "spam " * 200 + "\n"
while True:
    sys.stdout.write(line)
