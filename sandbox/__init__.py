"""seccomp-sandbox: run untrusted commands under Docker/OCI seccomp profiles compiled to BPF."""
__version__ = "0.1.0"
