"""Build the optional C extension; everything else is declared in pyproject.toml.

`unitmgr.manager._clone3` starts programs directly inside their cgroup
(manager/_clone3.c). It is optional: where no C compiler is present the build
goes on without it and manager/spawn.py uses its pure-Python paths.
"""

from setuptools import Extension, setup

setup(
    # Built against Python 3.11's stable ABI, so one wheel serves 3.11 and newer.
    ext_modules=[
        Extension("unitmgr.manager._clone3", ["manager/_clone3.c"], optional=True, py_limited_api=True),
    ],
    options={"bdist_wheel": {"py_limited_api": "cp311"}},
)
