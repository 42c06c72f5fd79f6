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
# Where the modules this package takes from Debian come from (its Depends).
_DEBIAN = {debian_modules!r}


def _fail(error: str, status: int) -> int:
    # sys.__stderr__: Kivy replaces sys.stderr with a logger that would print it twice.
    print(f"{script}: event=fatal error=\\"{{error}}\\"", file=sys.__stderr__)
    return status


# One line naming the problem, not a traceback: the journal shows it as the reason and
# the unit's restart limits stop there. 69 (EX_UNAVAILABLE, a missing dependency) is in
# the units' RestartPreventExitStatus; 74 (EX_IOERR) is retried a few times.
try:
    from {module} import {attr}

    status = {call}()
except ModuleNotFoundError as exc:
    top = (exc.name or "?").split(".")[0]
    fix = "install " + _DEBIAN[top] if top in _DEBIAN else "reinstall {package}"
    status = _fail(f"missing Python module {{top}}: {{fix}}", 69)
except OSError as exc:
    where = f": {{exc.filename}}" if exc.filename else ""
    hint = "check that path's owner and mode" if exc.filename else "check the system"
    status = _fail(f"{{exc.strerror or exc}}{{where}}: {{hint}}", 74)
sys.exit(status)
'''


def entry_points(pyproject: Path) -> dict[str, str]:
    """The ``[project.scripts]`` table: script name -> "module:attr"."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return dict(data.get("project", {}).get("scripts", {}))


def launcher(
    script: str, entry_point: str, package: str, libdir: str, debian_modules: dict[str, str]
) -> str:
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
        debian_modules=dict(sorted(debian_modules.items())),
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
