# Burns CPU forever; the CPU time limit stops it.
n = 0
while True:
    n += 1
