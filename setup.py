"""Build the optional C extensions; everything else is declared in pyproject.toml.

`unitmgr.manager._clone3` starts programs directly inside their cgroup
(manager/_clone3.c), and `unitmgr.manager._linuxcalls` makes two Linux calls
without loading ctypes (manager/_linuxcalls.c). Both are optional: where no C
compiler is present the build goes on without them and the manager uses its
pure-Python paths.
"""

from setuptools import Extension, setup

setup(
    # Built against Python 3.11's stable ABI, so one wheel serves 3.11 and newer.
    ext_modules=[
        Extension("unitmgr.manager._clone3", ["manager/_clone3.c"], optional=True, py_limited_api=True),
        Extension("unitmgr.manager._linuxcalls", ["manager/_linuxcalls.c"], optional=True, py_limited_api=True),
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
