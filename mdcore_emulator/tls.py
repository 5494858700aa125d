"""A throw-away certificate authority and server certificate for HTTPS on loopback."""

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA certificate (for a client's `verify`) and the server's chain and key."""

    ca_path: Path
    cert_path: Path
    key_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "MetaDefender Core emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _alt_names(host: str) -> x509.SubjectAlternativeName:
    """localhost, 127.0.0.1 and ::1, plus `host` when it is something else."""
    names = {
        "localhost": x509.DNSName("localhost"),
        "127.0.0.1": x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        "::1": x509.IPAddress(ipaddress.ip_address("::1")),
    }
    if host not in names:
        try:
            names[host] = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            names[host] = x509.DNSName(host)
    return x509.SubjectAlternativeName(list(names.values()))


def _certificate(subject: x509.Name, key, issuer: x509.Name, issuer_key, is_ca: bool, extensions) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _usage(signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _write(path: Path, data: bytes, private: bool = False) -> Path:
    if private:  # readable by the owner only, before the key goes in
        path.touch(mode=0o600)
        path.chmod(0o600)
    path.write_bytes(data)
    return path


def make_certificates(cert_dir: Path, host: str) -> TlsFiles:
    """Create a fresh CA and a server certificate for `host` and loopback in `cert_dir` (created if needed)."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("MetaDefender Core emulator CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, True, [(_usage(True), True)])
    server = _certificate(
        _name(host),
        server_key,
        ca_name,
        ca_key,
        False,
        [
            (_usage(False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (_alt_names(host), False),
        ],
    )
    pem = serialization.Encoding.PEM
    key_pem = server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return TlsFiles(
        ca_path=_write(cert_dir / "ca.pem", ca.public_bytes(pem)),
        cert_path=_write(cert_dir / "server.pem", server.public_bytes(pem) + ca.public_bytes(pem)),
        key_path=_write(cert_dir / "server.key", key_pem, private=True),
    )


def server_context(files: TlsFiles) -> ssl.SSLContext:
    """The server-side TLS context for these files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.cert_path, files.key_path)
    return context
