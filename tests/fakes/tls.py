"""TLS for the loopback fakes: a throw-away CA, a server certificate for 127.0.0.1, a CA bundle."""
from __future__ import annotations

import atexit
import datetime as dt
import ipaddress
import os
import shutil
import ssl
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from socketserver import TCPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsMaterial:
    """Files a loopback HTTPS server and its clients need."""

    directory: Path
    cert_path: Path   # server certificate followed by the CA certificate
    key_path: Path
    ca_path: Path
    ca_bundle: Path   # the machine's bundle plus our CA: point REQUESTS_CA_BUNDLE here


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _ca_certificate(key: rsa.RSAPrivateKey, now: dt.datetime) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "OMIS test CA")])
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(key: rsa.RSAPrivateKey, ca_key: rsa.RSAPrivateKey,
                        ca_cert: x509.Certificate, now: dt.datetime) -> x509.Certificate:
    public = key.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_cert.subject).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def current_ca_bundle() -> Path:
    """Return the bundle requests trusts now: REQUESTS_CA_BUNDLE, else certifi's."""
    configured = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    if configured and Path(configured).is_file():
        return Path(configured)
    import certifi
    return Path(certifi.where())


def make_tls_material(directory: Path) -> TlsMaterial:
    """Write a CA, a server certificate for 127.0.0.1/localhost and a CA bundle into directory."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.timezone.utc)
    ca_key, server_key = _private_key(), _private_key()
    ca_cert = _ca_certificate(ca_key, now)
    server_cert = _server_certificate(server_key, ca_key, ca_cert, now)
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(_pem(ca_cert))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(_pem(server_cert) + _pem(ca_cert))
    key_path = directory / "server-key.pem"
    key_path.write_bytes(server_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    bundle = directory / "ca-bundle.pem"
    existing = current_ca_bundle().read_bytes()
    bundle.write_bytes(existing.rstrip(b"\n") + b"\n" + _pem(ca_cert))
    return TlsMaterial(directory, cert_path, key_path, ca_path, bundle)


@lru_cache(maxsize=1)
def shared_tls_material() -> TlsMaterial:
    """Return TLS material made once per test process, removed when the process exits."""
    directory = Path(tempfile.mkdtemp(prefix="omis-tls-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return make_tls_material(directory)


def server_context(material: TlsMaterial) -> ssl.SSLContext:
    """Build a server-side TLS context for the loopback certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(material.cert_path), str(material.key_path))
    return context


def wrap_server(server: TCPServer, material: TlsMaterial) -> None:
    """Make an http.server serve HTTPS on its already bound socket."""
    # The handshake runs lazily in the handler thread, so a slow client never stalls accept().
    server.socket = server_context(material).wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False)
