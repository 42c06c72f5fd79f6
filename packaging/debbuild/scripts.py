"""The /usr/bin launchers of a package's console scripts.

Each launcher puts the package's private module directory (and its vendor directory, which
takes precedence over Debian's copies) in front of sys.path and calls the entry point named
in pyproject.toml. The directory is found relative to the launcher itself
(<prefix>/bin/x -> <prefix>/lib/<package>), so an extracted tree runs as installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from debbuild.errors import MissingInput

_LAUNCHER = '''#!/usr/bin/python3
"""{script}: launcher installed by the {package} package."""

import sys
from pathlib import Path

_LIB = Path(__file__).resolve().parent.parent / "lib" / "{libname}"
sys.path[:0] = [str(_LIB), str(_LIB / "vendor")]

from {module} import {attr}  # noqa: E402

sys.exit({call}())
'''


def entry_points(pyproject: Path) -> dict[str, str]:
    """The ``[project.scripts]`` table: script name -> "module:attr"."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return dict(data.get("project", {}).get("scripts", {}))


def launcher(script: str, entry_point: str, package: str, libdir: str) -> str:
    """Source of the launcher for ``script`` (entry point "module:attr[.attr]")."""
    module, _, attr = entry_point.partition(":")
    if not module or not attr:
        raise MissingInput(f"console script {script} has a malformed entry point {entry_point!r}")
    head = attr.split(".")[0]
    return _LAUNCHER.format(
        script=script,
        package=package,
        libname=Path(libdir).name,
        module=module.strip(),
        attr=head,
        call=attr.strip(),
    )


def check_scripts(
    scripts: tuple[str, ...], packages: tuple[str, ...], points: dict[str, str]
) -> dict[str, str]:
    """The entry points of ``scripts``; each must exist and live in one of ``packages``."""
    chosen = {}
    for script in scripts:
        if script not in points:
            raise MissingInput(
                f"console script {script} is not declared in pyproject.toml [project.scripts] "
                "yet: the package cannot ship it"
            )
        top = points[script].split(":")[0].split(".")[0].strip()
        if top not in packages:
            raise MissingInput(
                f"console script {script} runs {points[script]!r}, outside the packaged "
                f"Python packages {', '.join(packages)}"
            )
        chosen[script] = points[script]
    return chosen
