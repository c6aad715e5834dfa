"""Sealing `secret__` dynamic variables while a call waits in the database.

ElevenLabs promises those variables never reach the LLM; the bridge promises
they never sit in its database or logs in clear. A Twilio-mode call must keep
them until the callee answers, possibly in another worker process, so they are
encrypted (Fernet: AES-128-CBC with HMAC-SHA256) under a key derived from the
bridge's own secret.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bridge.secret import SECRET_PREFIX

SEALED = "$sealed"


class Sealer:
    def __init__(self, secret: str) -> None:
        key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"callbridge secret variables"
        ).derive(secret.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal_text(self, text: str) -> str:
        """`text` encrypted and authenticated, as URL-safe ASCII."""
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open_text(self, sealed: str) -> str:
        """What `seal_text` sealed; ValueError if it was not sealed with this key."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise ValueError("cannot be opened with this key") from None

    def seal(self, client_data: dict[str, Any] | None) -> dict[str, Any] | None:
        return self._map(client_data, self._seal_value)

    def unseal(self, client_data: dict[str, Any] | None) -> dict[str, Any] | None:
        """The client data with its secrets back; raises ValueError if they cannot be read."""
        return self._map(client_data, self._unseal_value)

    def _seal_value(self, value: object) -> object:
        return {SEALED: self._fernet.encrypt(json.dumps(value).encode()).decode("ascii")}

    def _unseal_value(self, value: object) -> object:
        if not (isinstance(value, dict) and isinstance(value.get(SEALED), str)):
            return value
        try:
            return json.loads(self._fernet.decrypt(value[SEALED].encode("ascii")))
        except InvalidToken:
            raise ValueError("a sealed secret variable cannot be opened (key changed?)") from None

    @staticmethod
    def _map(client_data: dict[str, Any] | None, change: Any) -> dict[str, Any] | None:
        if not client_data or not isinstance(client_data.get("dynamic_variables"), dict):
            return client_data
        variables = {
            name: change(value) if name.startswith(SECRET_PREFIX) else value
            for name, value in client_data["dynamic_variables"].items()
        }
        return {**client_data, "dynamic_variables": variables}
