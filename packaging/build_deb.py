"""Build the Debian packages tvpay-box and tvpay-gateway into build/deb/ (``make deb``).

Run with the project's venv interpreter: the Python dependencies that Debian 12 does not
ship in a usable version are vendored from that venv, so the build needs no network.
Each package is described by packaging/debian/<name>.toml; see docs/deploy-box.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from debbuild.build import build_package
from debbuild.errors import BuildError
from debbuild.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("tvpay-box", "tvpay-gateway")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "build" / "deb", help="output dir")
    parser.add_argument("packages", nargs="*", help=f"some of {', '.join(PACKAGES)} (default all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.packages) - set(PACKAGES))
    if unknown:
        parser.error(f"unknown package {', '.join(unknown)}; choose from {', '.join(PACKAGES)}")
    debian = REPO / "packaging" / "debian"
    for name in args.packages or PACKAGES:
        try:
            spec = load_spec(debian / f"{name}.toml")
            deb = build_package(spec, REPO, args.out, debian / "changelog")
        except BuildError as exc:
            print(f"build_deb: package={name} error={exc}", file=sys.stderr)
            return 1
        print(deb)
    return 0


if __name__ == "__main__":
    sys.exit(main())
