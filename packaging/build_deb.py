"""Build the Debian packages tvpay-box and tvpay-gateway into build/deb/ (``make deb``).

Run with the project's venv interpreter: the Python dependencies that Debian 12 does not
ship in a usable version are vendored from that venv, so the build needs no network. A
package for another architecture than this machine's takes its vendored compiled code from
wheels for that architecture in --wheelhouse (packaging/fetch_wheels.py downloads them).
Each package is described by packaging/debian/<name>.toml; see docs/deploy-box.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from debbuild import arch, tools
from debbuild.build import build_package
from debbuild.errors import BuildError
from debbuild.spec import PackageSpec, load_spec
from debbuild.stage import Target

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tvpay-box", "tvpay-gateway")
DEBIAN = REPO / "packaging" / "debian"
WHEELHOUSE = REPO / "build" / "wheels"


def architectures(spec: PackageSpec, chosen: list[str]) -> list[str]:
    """--arch when given, else the package's own list, else this machine's architecture."""
    return chosen or list(spec.architectures) or [tools.host_architecture()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "deb", help="output dir")
    parser.add_argument(
        "--arch",
        action="append",
        default=[],
        help=f"build for this architecture ({', '.join(arch.ARCHITECTURES)}); repeatable "
        "(default: the architectures listed in the package's description)",
    )
    parser.add_argument(
        "--wheelhouse", type=Path, default=WHEELHOUSE, help="wheels for other architectures"
    )
    parser.add_argument(
        "--changelog",
        type=Path,
        default=DEBIAN / "changelog",
        help="Debian changelog whose newest entry gives the version",
    )
    parser.add_argument("packages", nargs="*", help=f"some of {', '.join(PACKAGES)} (default all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.packages) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package {', '.join(unknown)}; choose from {', '.join(PACKAGES)}")
    for name in args.packages or PACKAGES:
        try:
            spec = load_spec(DEBIAN / f"{name}.toml")
            for arch_name in architectures(spec, args.arch):
                target = Target(arch.architecture(arch_name), args.wheelhouse)
                print(build_package(spec, REPO, args.out, args.changelog, target))
        except BuildError as exc:
            print(f"build_deb: package={name} error={exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
