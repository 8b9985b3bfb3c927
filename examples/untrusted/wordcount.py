# The job a learned profile runs: count the words on stdin and print the three most common.
# `make demo` learns its profile first (sandbox learn), then runs it under that profile only.
import collections
import sys

words = sys.stdin.read().lower().split()
for word, n in collections.Counter(words).most_common(3):
    print("%s %d" % (word, n))
