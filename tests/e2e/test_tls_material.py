"""The emulator's local CA and 127.0.0.1 server certificate, checked by a real TLS handshake."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from emulator.stack.tls import TlsError, ensure_tls


def test_a_client_trusting_only_the_ca_verifies_the_server(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(tls.server_cert, tls.server_key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
            tls_conn.sendall(tls_conn.recv(16))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(tls.ca_cert))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        client_ctx.wrap_socket(raw, server_hostname="127.0.0.1") as conn,
    ):
        conn.sendall(b"hello")
        assert conn.recv(16) == b"hello"
    thread.join(5)
    listener.close()


def test_private_keys_are_owner_only(tmp_path: Path) -> None:
    tls = ensure_tls(tmp_path / "tls")
    for key in (tls.server_key, tmp_path / "tls" / "ca-key.pem"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_kept_directory_reuses_its_ca(tmp_path: Path) -> None:
    first = ensure_tls(tmp_path / "tls").ca_cert.read_bytes()
    second = ensure_tls(tmp_path / "tls").ca_cert.read_bytes()
    assert first == second


def test_the_server_certificate_names_127_0_0_1_and_localhost_for_server_auth(
    tmp_path: Path,
) -> None:
    tls = ensure_tls(tmp_path / "tls")
    ca = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(tls.server_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_damaged_ca_key_is_explained(tmp_path: Path) -> None:
    ensure_tls(tmp_path / "tls")
    (tmp_path / "tls" / "ca-key.pem").write_bytes(b"not a key")
    with pytest.raises(TlsError, match="and start again"):
        ensure_tls(tmp_path / "tls")
