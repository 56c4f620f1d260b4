"""A Mixpanel service account (HTTP basic auth). Credentials travel only in the ``Authorization`` header, never
in the URL; they are never logged, and every message built from a server reply or a ``requests`` exception is
scrubbed of the secret (:meth:`ServiceAccount.scrub`)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServiceAccount:
    """A Mixpanel service account (HTTP basic auth). ``repr``/``str`` never show the secret."""

    username: str
    secret: str = field(repr=False)

    def __post_init__(self):
        if not isinstance(self.username, str) or not self.username.strip():
            raise ValueError("ServiceAccount.username must be a non-empty string")
        if not isinstance(self.secret, str) or not self.secret:
            raise ValueError(f"ServiceAccount {self.username!r}: the secret is empty")

    def scrub(self, text: str) -> str:
        """``text`` with the secret (and the basic-auth token made from it) replaced by ``***``."""
        token = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode("ascii")
        for s in (token, self.secret):
            if s:
                text = text.replace(s, "***")
        return text
