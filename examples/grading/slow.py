"""Time limit exceeded: never finishes."""
a, b = map(int, input().split())
while True:
    pass
