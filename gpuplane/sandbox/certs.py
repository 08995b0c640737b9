"""The sandbox's keys and certificates (the ``cryptography`` package; nothing leaves the state folder).

Contract: ``write_pki(folder)`` writes, once, a self-signed CA, a kube-apiserver serving certificate
for 127.0.0.1/localhost and the in-cluster ``kubernetes`` service names, an admin client
certificate (``CN=gpuplane-admin, O=system:masters``: every component and the user's kubeconfig
use it, which a loopback-only sandbox can afford), and the service-account signing key pair.
Existing files are kept (the same CA across ``down``/``up``), so kubeconfigs stay valid.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FILES = ("ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key", "sa.key", "sa.pub")
_VALID_DAYS = 365


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _cert(subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey,
          *, ca: bool = False, server_names: tuple[str, ...] = (), client: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
    else:
        usages = [ExtendedKeyUsageOID.SERVER_AUTH] if server_names else []
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        b = b.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if server_names:
        alt: list[x509.GeneralName] = []
        for n in server_names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(n)))
            except ValueError:
                alt.append(x509.DNSName(n))
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


SERVER_NAMES = ("127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local")


def write_pki(folder: Path) -> dict[str, Path]:
    """Write the CA, serving, admin and service-account files into ``folder`` unless all exist."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {f: folder / f for f in FILES}
    if all(p.is_file() for p in paths.values()):
        return paths
    ca_key = _key()
    ca_name = _name("gpuplane-sandbox-ca")
    ca = _cert(ca_name, ca_key, ca_name, ca_key, ca=True)
    server_key, admin_key, sa_key = _key(), _key(), _key()
    server = _cert(_name("kube-apiserver"), server_key, ca_name, ca_key, server_names=SERVER_NAMES)
    admin = _cert(_name("gpuplane-admin", "system:masters"), admin_key, ca_name, ca_key, client=True)
    pem = serialization.Encoding.PEM
    out = {
        "ca.crt": ca.public_bytes(pem), "ca.key": _pem_key(ca_key),
        "apiserver.crt": server.public_bytes(pem), "apiserver.key": _pem_key(server_key),
        "admin.crt": admin.public_bytes(pem), "admin.key": _pem_key(admin_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
    }
    for name, data in out.items():
        paths[name].write_bytes(data)
        if name.endswith(".key"):
            paths[name].chmod(0o600)
    return paths


def write_serving_cert(folder: Path, pki: Path, names: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
    """A serving certificate for ``names``, issued by the sandbox CA in ``pki``, as ``folder/tls.crt`` and
    ``folder/tls.key`` (the file names controller-runtime's webhook server and cert watcher read). Kept when
    both files exist and the CA is the one that issued them."""
    folder.mkdir(parents=True, exist_ok=True)
    crt, key_file = folder / "tls.crt", folder / "tls.key"
    ca = x509.load_pem_x509_certificate((pki / "ca.crt").read_bytes())
    if crt.is_file() and key_file.is_file() and x509.load_pem_x509_certificate(crt.read_bytes()).issuer == ca.subject:
        return crt, key_file
    ca_key = serialization.load_pem_private_key((pki / "ca.key").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pki / 'ca.key'} is not the sandbox's EC CA key")
    key = _key()
    cert = _cert(_name("gpuplane-sandbox-webhooks"), key, ca.subject, ca_key, server_names=names)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(_pem_key(key))
    key_file.chmod(0o600)
    return crt, key_file
