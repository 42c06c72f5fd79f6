"""`list`, `info` and `verify`: look at dongles without changing them."""

from __future__ import annotations

import argparse
import os
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID, NameOID
from rich.console import Console
from rich.table import Table

from dongle.model import DeviceInfo
from dongle.staff.attestation import attestation_from_results, verify_attestation
from dongle.staff.context import Context
from dongle.staff.daemon import translated
from protocol import pki
from protocol.errors import MalformedCertificate

HOUSEHOLD_URN = "urn:tvpay:household:"


def device_json(info: DeviceInfo) -> dict[str, Any]:
    holder = info.held_by
    return {
        "serial": info.serial,
        "state": info.state,
        "firmware": info.firmware,
        "key_rev": info.key_rev,
        "counter": info.counter,
        "pin_set": info.pin_set,
        "pin_retries": info.pin_retries,
        "puk_retries": info.puk_retries,
        "certificate": info.certificate,
        "held_by": holder.describe() if holder else None,
    }


def run_list(args: argparse.Namespace, ctx: Context) -> int:
    with translated():
        devices = ctx.daemon().devices()
    rows = [device_json(d) for d in devices]

    def render(console: Console) -> None:
        if not rows:
            console.print("No payment dongle is plugged in.")
            return
        table = Table("serial", "state", "firmware", "key rev", "PIN tries", "held by")
        for row in rows:
            table.add_row(
                row["serial"],
                row["state"],
                row["firmware"],
                str(row["key_rev"]),
                str(row["pin_retries"]) if row["pin_set"] else "-",
                row["held_by"] or "",
            )
        console.print(table)

    ctx.out.result({"dongles": rows}, render)
    return 0


def certificate_summary(der: bytes | None) -> dict[str, Any] | None:
    """Who the device certificate names, who issued it, until when; None without one."""
    if not der:
        return None
    try:
        cert = pki.parse_certificate(der)
    except MalformedCertificate as exc:
        return {"error": f"the certificate on the dongle {exc.reason}"}
    household = None
    try:
        names = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        for uri in names.value.get_values_for_type(x509.UniformResourceIdentifier):
            if uri.startswith(HOUSEHOLD_URN):
                household = uri[len(HOUSEHOLD_URN) :]
    except x509.ExtensionNotFound:
        pass
    common = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return {
        "subject": str(common[0].value) if common else cert.subject.rfc4514_string(),
        "household_no": household,
        "issuer": cert.issuer.rfc4514_string(),
        "not_after": pki.validity_utc(cert)[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _read_cert(ctx: Context, serial: str) -> bytes | None:
    answer = ctx.daemon().read_cert(serial)
    if isinstance(answer, dict):
        answer = answer.get("certificate")
    return answer if isinstance(answer, bytes) else None


def run_info(args: argparse.Namespace, ctx: Context) -> int:
    with translated():
        info = ctx.daemon().info(args.serial)
        certificate = certificate_summary(
            _read_cert(ctx, info.serial) if info.certificate else None
        )
    data = {**device_json(info), "certificate": certificate}

    def render(console: Console) -> None:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key in ("serial", "firmware", "state", "key_rev", "counter"):
            table.add_row(key.replace("_", " "), str(data[key]))
        pin = f"set, {info.pin_retries} tries left" if info.pin_set else "not set"
        table.add_row("PIN", pin)
        table.add_row("PUK tries left", str(info.puk_retries) if info.pin_set else "-")
        if certificate and "error" not in certificate:
            summary = (
                f"{certificate['subject']}, household {certificate['household_no'] or '?'}, "
                f"issued by {certificate['issuer']}, valid until {certificate['not_after']}"
            )
        else:
            summary = certificate["error"] if certificate else "none"
        table.add_row("certificate", summary)
        table.add_row("held by", data["held_by"] or "nobody")
        console.print(table)

    ctx.out.result(data, render)
    return 0


def run_verify(args: argparse.Namespace, ctx: Context) -> int:
    cas = ctx.cas()
    nonce = os.urandom(32)
    with translated():
        client = ctx.daemon()
        serial = client.info(args.serial).serial
        attestation = attestation_from_results(serial, nonce, client.attest(nonce, serial))
    genuine = verify_attestation(attestation, cas)
    data = {
        "serial": serial,
        "genuine": True,
        "manufacturer": genuine.manufacturer,
        "key_rev": genuine.key_rev,
        "has_key": genuine.has_key,
        "chain_length": len(attestation.certificates),
    }

    def render(console: Console) -> None:
        console.print(
            f"[green]Genuine:[/] dongle {serial} was made by {genuine.manufacturer} "
            f"(attestation chain and a fresh signature verified; key rev {genuine.key_rev})."
        )

    ctx.out.result(data, render)
    return 0
