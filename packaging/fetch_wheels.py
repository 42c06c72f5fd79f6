"""Download the wheels that ``make deb`` needs to build packages for other architectures.

For each package and each of its architectures other than this machine's, every vendored
distribution holding compiled code gets the wheel of the version installed in the build venv,
built for that architecture, in build/wheels/<arch>/. Wheels already there are kept, so only
the first run (or a version change) needs PyPI; packaging/build_deb.py then runs offline.
A distribution with no such wheel on PyPI stops here with its name and architecture.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from build_deb import DEBIAN, PACKAGES, WHEELHOUSE, architectures
from debbuild import arch, tools, vendor, wheels
from debbuild.errors import BuildError
from debbuild.spec import load_spec


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheelhouse", type=Path, default=WHEELHOUSE, help="where wheels go")
    parser.add_argument("--arch", action="append", default=[], help="only this architecture")
    args = parser.parse_args(argv)
    for name in PACKAGES:
        try:
            spec = load_spec(DEBIAN / f"{name}.toml")
            resolution = vendor.resolve(spec.python.requirements, spec.python.debian)
            compiled = [d for d in resolution.vendored if wheels.has_compiled_code(d)]
            for arch_name in architectures(spec, args.arch):
                if arch_name == tools.host_architecture():
                    continue
                for dist in compiled:
                    print(wheels.fetch(dist, arch.architecture(arch_name), args.wheelhouse))
        except BuildError as exc:
            print(f"fetch_wheels: package={name} error={exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
