"""Build the C core (csrc/) into sandbox._core through Cython, and sandbox-init (the pid 1 of a
run's PID namespace) as a small executable beside the package."""
import glob
import os
import subprocess

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

C_SOURCES = sorted(glob.glob("csrc/*.c") + glob.glob("csrc/syscalls/*.c"))
INIT_SOURCE = "csrc/init/sandbox_init.c"
# the pre-filtered zygote: its loop, the wire protocol and the child sequence it shares with
# direct runs
ZYGOTE_SOURCES = ["csrc/zygote/main.c", "csrc/zygote.c", "csrc/spawn.c", "csrc/notify.c",
                   "csrc/bpf_emu.c", "csrc/watch.c"]

core = Extension(
    "sandbox._core",
    sources=["sandbox/_core.pyx"] + C_SOURCES,
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers"],
)


class BuildExt(build_ext):
    """build_ext, plus sandbox-init: static and without libc where the compiler allows (an exec
    of it then costs ~0.1 ms), else an ordinary executable; and sandbox-zygote, static where
    the C library allows (fewer syscalls at its start, which runs under the profile's filter)."""

    def run(self):
        super().run()
        out_dir = "sandbox" if self.inplace else os.path.join(self.build_lib, "sandbox")
        os.makedirs(out_dir, exist_ok=True)
        cc = os.environ.get("CC") or self.compiler.compiler_so[0]
        self._executable(cc, os.path.join(out_dir, "sandbox-init"), [INIT_SOURCE],
                         (["-O2", "-static", "-nostdlib", "-fno-stack-protector", "-DSB_NOLIBC"],
                          ["-O2"]))
        self._executable(cc, os.path.join(out_dir, "sandbox-zygote"), ZYGOTE_SOURCES,
                         (["-O2", "-std=gnu11", "-static"], ["-O2", "-std=gnu11"]))

    @staticmethod
    def _executable(cc, target, sources, flag_sets):
        """The first of flag_sets that compiles."""
        for flags in flag_sets:
            if subprocess.call([cc, *flags, "-o", target, *sources]) == 0:
                return
        raise RuntimeError("could not build %s" % target)


setup(ext_modules=cythonize([core], language_level=3,
                            compiler_directives={"embedsignature": True}),
      cmdclass={"build_ext": BuildExt})
