"""SendGrid-style signed event webhook: ECDSA P-256 / SHA-256 over timestamp + raw body."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE  # X-Twilio-Email-Event-Webhook-Signature
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP  # X-Twilio-Email-Event-Webhook-Timestamp


def load_or_create_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The sink's signing key, kept in its data folder so restarts keep the same public key."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key
    key = ec.generate_private_key(ec.SECP256R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    tmp.chmod(0o600)
    tmp.replace(path)
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The verification key as SendGrid shows it (base64 DER SubjectPublicKeyInfo)."""
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def sign_payload(key: ec.EllipticCurvePrivateKey, timestamp: str, payload: bytes) -> str:
    """Base64 DER ECDSA signature of ``timestamp + payload`` (what SendGrid sends)."""
    return base64.b64encode(
        key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    ).decode()


def verify_payload(public_key: str, timestamp: str, payload: bytes, signature: str) -> bool:
    """Verify on the raw request bytes (never on re-serialised JSON)."""
    try:
        key = EventWebhook().convert_public_key_to_ecdsa(public_key)
        key.verify(
            base64.b64decode(signature), timestamp.encode() + payload, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
