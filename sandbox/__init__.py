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

from .result import Result  # noqa: E402
from .runner import DEVNULL, INHERIT, PIPE, Sandbox, run  # noqa: E402
from .grading import GradeError, GradeReport, grade  # noqa: E402

__all__ = ["run", "Sandbox", "Result", "PIPE", "INHERIT", "DEVNULL", "grade", "GradeReport",
           "GradeError", "__version__"]
