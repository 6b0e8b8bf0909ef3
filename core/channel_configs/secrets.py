"""Secrets of channel configurations, encrypted at rest with a key derived from the instance's secret key.

Fernet (AES-128-CBC + HMAC-SHA256, authenticated) under a key derived with HKDF-SHA256 from `secret_key` and a
purpose label, so the same secret key signing sessions never serves as an encryption key itself. Rotation: the new
`secret_key` encrypts, the `previous_secret_keys` still decrypt (MultiFernet), and `rotate` re-encrypts a token
under the newest key (`channels.setup.service.reseal`, run at start, so old keys can be dropped after one restart).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PURPOSE = b"switchboard channel-config secrets v1"


class UnreadableSecrets(Exception):
    """No key this instance has opens the stored secrets (the secret key changed without the old one kept)."""


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


class SecretBox:
    """Encrypts and decrypts the secret fields of one configuration (a dict of strings)."""

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        self._fernet = MultiFernet([_fernet(secret_key), *(_fernet(k) for k in previous_keys)])

    def seal(self, values: dict[str, str]) -> str | None:
        if not values:
            return None
        return self._fernet.encrypt(json.dumps(values, sort_keys=True).encode()).decode("ascii")

    def open(self, token: str | None) -> dict[str, str]:
        if not token:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError) as exc:
            raise UnreadableSecrets("the stored secrets cannot be decrypted with this instance's secret key") from exc
        return {str(k): str(v) for k, v in data.items()}

    def rotate(self, token: str) -> str:
        """The same secrets under the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise UnreadableSecrets("the stored secrets cannot be decrypted with this instance's secret key") from exc
