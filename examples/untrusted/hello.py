# An ordinary job: some computation and a little output.
import hashlib
import json

digest = hashlib.sha256(b"seccomp-sandbox").hexdigest()[:16]
print(json.dumps({"primes": [n for n in range(2, 60) if all(n % d for d in range(2, n))],
                  "digest": digest}))
