"""postinst, prerm and postrm, following the snippets debhelper generates.

dh_installsysusers, dh_installtmpfiles, dh_installsystemd and dh_python3 write these same
blocks; the package is built without debhelper (dpkg-deb on a staged tree), so the blocks
are reproduced here, with the same guards: nothing touches a running systemd when there is
none (chroots, image builds) and DPKG_ROOT installs skip what cannot run there.
"""

from __future__ import annotations

from dataclasses import dataclass

_CONFIGURE = (
    'if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || '
    '[ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ] ; then'
)


@dataclass(frozen=True, slots=True)
class ScriptInputs:
    package: str
    libdir: str
    units: tuple[str, ...]  # unit file names, in start order
    start_on_install: bool
    sysusers: str  # file name in /usr/lib/sysusers.d
    tmpfiles: str  # file name in /usr/lib/tmpfiles.d
    reload_udev: bool


def _script(body: list[str]) -> str:
    return "\n".join(["#!/bin/sh", "set -e", "", *body, ""]) + "\n"


def _quoted(units: tuple[str, ...]) -> str:
    return " ".join(f"'{unit}'" for unit in units)


def postinst(inputs: ScriptInputs) -> str:
    units = _quoted(inputs.units)
    body = [
        _CONFIGURE,
        f'\tsystemd-sysusers ${{DPKG_ROOT:+--root="$DPKG_ROOT"}} {inputs.sysusers}',
        '\tif [ -z "${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ] ; then',
        f"\t\tsystemd-tmpfiles --create {inputs.tmpfiles} >/dev/null || true",
        "\tfi",
        "fi",
        "",
        "if command -v py3compile >/dev/null 2>&1; then",
        f"\tpy3compile -p {inputs.package} {inputs.libdir}",
        "fi",
        "",
    ]
    if inputs.reload_udev:
        body += [
            _CONFIGURE,
            '\tif [ -z "${DPKG_ROOT:-}" ] && [ -d /run/udev ] && command -v udevadm >/dev/null; then',
            "\t\t# A dongle already plugged in gets the rule's group and mode now.",
            "\t\tudevadm control --reload-rules || true",
            "\t\tudevadm trigger --action=add --subsystem-match=usb || true",
            "\tfi",
            "fi",
            "",
        ]
    for unit in inputs.units:
        body += [
            _CONFIGURE,
            f"\tdeb-systemd-helper unmask '{unit}' >/dev/null || true",
            f"\tif deb-systemd-helper --quiet was-enabled '{unit}'; then",
            f"\t\tdeb-systemd-helper enable '{unit}' >/dev/null || true",
            "\telse",
            f"\t\tdeb-systemd-helper update-state '{unit}' >/dev/null || true",
            "\tfi",
            "fi",
            "",
        ]
    # A fresh install starts the units only when the package says so; an upgrade restarts
    # the ones that were running either way.
    action = (
        'if [ -n "$2" ]; then _action=restart; else _action=start; fi'
        if inputs.start_on_install
        else 'if [ -n "$2" ]; then _action=try-restart; else _action=""; fi'
    )
    body += [
        _CONFIGURE,
        "\tif [ -d /run/systemd/system ]; then",
        "\t\tsystemctl --system daemon-reload >/dev/null || true",
        f"\t\t{action}",
        '\t\tif [ -n "$_action" ]; then',
        f'\t\t\tdeb-systemd-invoke "$_action" {units} >/dev/null || true',
        "\t\tfi",
        "\tfi",
        "fi",
    ]
    return _script(body)


def prerm(inputs: ScriptInputs) -> str:
    units = _quoted(tuple(reversed(inputs.units)))
    return _script(
        [
            'if [ -z "${DPKG_ROOT:-}" ] && [ "$1" = remove ] && [ -d /run/systemd/system ] ; then',
            f"\tdeb-systemd-invoke stop {units} >/dev/null || true",
            "fi",
            "",
            "if command -v py3clean >/dev/null 2>&1; then",
            f"\tpy3clean -p {inputs.package}",
            "else",
            f"\tfind {inputs.libdir} -type d -name __pycache__ -prune -exec rm -rf {{}} +",
            "fi",
        ]
    )


def postrm(inputs: ScriptInputs) -> str:
    units = _quoted(inputs.units)
    return _script(
        [
            'if [ -d /run/systemd/system ] && [ "$1" = remove ]; then',
            "\tsystemctl --system daemon-reload >/dev/null || true",
            "fi",
            "",
            'if [ "$1" = "remove" ] && command -v deb-systemd-helper >/dev/null 2>&1; then',
            f"\tdeb-systemd-helper mask {units} >/dev/null || true",
            "fi",
            "",
            "# State (the payment journal, the gateway database and keys) and the system users",
            "# stay on purge: a signed payment or a receipt key must never vanish with a package.",
            'if [ "$1" = "purge" ] && command -v deb-systemd-helper >/dev/null 2>&1; then',
            f"\tdeb-systemd-helper purge {units} >/dev/null || true",
            f"\tdeb-systemd-helper unmask {units} >/dev/null || true",
            "fi",
        ]
    )
