"""Wrong answer on some tests: 32-bit arithmetic overflows on big inputs."""
a, b = map(int, input().split())
total = (a + b) & 0xFFFFFFFF
print(total - (1 << 32) if total >= 1 << 31 else total)
