"""Build the C core (csrc/) into sandbox._core through Cython."""
import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

C_SOURCES = sorted(glob.glob("csrc/*.c") + glob.glob("csrc/syscalls/*.c"))

core = Extension(
    "sandbox._core",
    sources=["sandbox/_core.pyx"] + C_SOURCES,
    include_dirs=["csrc"],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter",
                        "-Wno-missing-field-initializers"],
)

setup(ext_modules=cythonize([core], language_level=3,
                            compiler_directives={"embedsignature": True}))
