"""seccomp-sandbox: run untrusted commands under Docker/OCI seccomp profiles compiled to BPF.

    import sandbox
    result = sandbox.run(["python3", "-c", "print(42)"], profile="default", timeout=2)
    sb = sandbox.Sandbox("grader", cpu_time=1, memory="256M")   # compile once, run many
    report = sandbox.grade(["python3", "sol.py"], "tests/")     # NAME.in/NAME.out: verdicts

Profiles: sandbox.profile.load(); compiled filters: sandbox.filter.compile_policy().
"""
__version__ = "0.1.0"

import logging as _logging

# a library logs, the application decides where it goes ("sandbox.seccomp": one record per
# distinct logged or denied syscall of a run)
_logging.getLogger("sandbox").addHandler(_logging.NullHandler())

__all__ = ["run", "Sandbox", "Result", "PIPE", "INHERIT", "DEVNULL", "grade", "GradeReport",
           "GradeError", "__version__"]

# The names above are imported on first use: importing a submodule (the pytest plugin, loaded
# in every pytest run once the package is installed) must not load the C core and the profile
# loader, nor fail when the core is not built.
_RUNNER_NAMES = ("run", "Sandbox", "PIPE", "INHERIT", "DEVNULL")
_GRADING_NAMES = ("grade", "GradeReport", "GradeError")


def __getattr__(name):
    if name in _RUNNER_NAMES:
        from . import runner
        return getattr(runner, name)
    if name in _GRADING_NAMES:
        from . import grading
        return getattr(grading, name)
    if name == "Result":
        from .result import Result
        return Result
    raise AttributeError("module 'sandbox' has no attribute %r" % name)


def __dir__():
    return sorted(list(globals()) + list(__all__))
