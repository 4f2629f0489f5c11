"""Build of striate's compiled kernels (the extension `striate.kernels._native`).

The metadata lives in pyproject.toml; this file only adds the extension. The extension is
optional: where no C compiler works, `pip install` still succeeds with a warning and striate
runs on its NumPy kernels (`striate.kernels.native.available` is then False).
"""

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = Path("src/striate/kernels/native")
SOURCES = ["module.c", "threads.c", "conv_direct.c", "depthwise.c", "pool.c", "channelwise.c",
           "winograd.c"]


class OptionalBuildExt(build_ext):
    """build_ext that turns a failed compilation into one warning instead of a failed install."""

    def run(self):
        try:
            super().run()
        except Exception as error:  # noqa: BLE001 - any compiler failure means "no extension"
            self._warn(error)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:  # noqa: BLE001
            self._warn(error)

    @staticmethod
    def _warn(error):
        print(
            f"WARNING: striate's compiled kernels were not built ({error}); striate will run on "
            "its NumPy kernels, which are slower on small-channel layers.",
            file=sys.stderr,
        )


def _compile_args():
    if sys.platform == "win32":
        return ["/O2"]
    # -O3 for the unrolling and vectorisation the register blocks need; no -ffast-math: the
    # kernels keep IEEE semantics (NaN propagates, no reassociation beyond what is written).
    return ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-function"]


setup(
    ext_modules=[
        Extension(
            "striate.kernels._native",
            sources=[str(NATIVE / name) for name in SOURCES],
            depends=[str(p) for p in NATIVE.glob("*.h")],
            extra_compile_args=_compile_args(),
            libraries=[] if sys.platform == "win32" else ["m", "pthread"],
            optional=True,
        )
    ],
    cmdclass={"build_ext": OptionalBuildExt},
)
