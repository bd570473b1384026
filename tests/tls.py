"""A self-signed certificate for the tests' local TLS servers (SMTP, IMAP)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """(certificate, key) for 127.0.0.1 and localhost, or None without the openssl CLI."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key
