"""Typed failures of the package build; each message says what to fix."""

from __future__ import annotations


class BuildError(Exception):
    """The package could not be built."""


class SpecError(BuildError):
    """A package description in packaging/debian/*.toml is malformed."""


class MissingInput(BuildError):
    """A file, console script or installed distribution the package needs is not there."""


class ToolFailed(BuildError):
    """An external tool (dpkg-deb, dpkg-shlibdeps, dpkg-parsechangelog) failed."""
