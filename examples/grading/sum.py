"""Correct: the sum of the two integers on stdin."""
a, b = map(int, input().split())
print(a + b)
