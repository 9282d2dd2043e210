"""Client secrets of the OAuth token endpoint: made once, stored only as an scrypt hash.

    secret = new_client_secret()          # shown once to the operator, given to the client
    hashed = hash_client_secret(secret)   # "scrypt$16384$8$1$<salt>$<hash>", in the file
    verify_client_secret(secret, hashed)  # True; constant time in the hash comparison

The gateway file holds the hash, never the secret: a copy of the file (a backup, a
repository) lets no one ask for a token. A secret is 32 random bytes, so the scrypt cost
is not what protects it (no dictionary holds it); :data:`SCRYPT_N` = 2**14 keeps a token
request at a few tens of milliseconds. :func:`check_secret_hash` is for config loading: a
hash in another form, with weaker parameters, or too costly to check, is refused with the
rule it breaks; the value itself is never repeated, since a secret pasted where its hash
belongs must not land in an error or a log.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from bus.errors import ConfigError

__all__ = [
    "MAX_SCRYPT_MEMORY_BYTES",
    "SCRYPT_N",
    "SCRYPT_P",
    "SCRYPT_R",
    "SECRET_HASH_FORM",
    "check_secret_hash",
    "hash_client_secret",
    "new_client_secret",
    "verify_client_secret",
]

#: scrypt's CPU/memory cost (a power of 2), block size and parallelism for new hashes;
#: also the weakest a stored hash may use.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
#: A stored hash whose parameters need more memory than this (128 * n * r bytes) is refused:
#: every token request would pay it.
MAX_SCRYPT_MEMORY_BYTES = 128 * 2**20
#: The form of a stored hash, as error messages name it.
SECRET_HASH_FORM = "scrypt$<n>$<r>$<p>$<salt>$<hash> (salt and hash in unpadded base64url)"  # noqa: S105 - a form, not a secret

_SALT_BYTES = 16
_HASH_BYTES = 32
_SECRET_BYTES = 32
_MAX_P = 16
_MAX_PART_BYTES = 64
_MAX_SECRET_CHARS = 1024  # a longer "secret" is refused before it costs anything
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_DECIMAL = re.compile(r"[1-9][0-9]{0,9}")
_FIX = "paste the hash line printed by `spbe-bus gateway client-secret CLIENT` (not the secret)"


@dataclass(frozen=True, slots=True)
class _Scrypt:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def new_client_secret() -> str:
    """A new client secret: 32 random bytes as URL-safe text (43 characters)."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def hash_client_secret(secret: str) -> str:
    """The line to store for ``secret``: ``scrypt$<n>$<r>$<p>$<salt>$<hash>``, fresh salt."""
    if not secret:
        raise ValueError("an empty client secret cannot be hashed")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(secret, _Scrypt(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, b""), _HASH_BYTES)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_client_secret(secret: str, hashed: str) -> bool:
    """Whether ``secret`` is the one ``hashed`` was made from (digests compared in constant
    time). A malformed ``hashed`` raises :class:`~bus.errors.ConfigError`: config loading
    should have refused it with :func:`check_secret_hash`."""
    stored = _parse(hashed, "secret_hash")
    if not secret or len(secret) > _MAX_SECRET_CHARS:
        return False
    return hmac.compare_digest(_scrypt(secret, stored, len(stored.digest)), stored.digest)


def check_secret_hash(hashed: str, field: str = "secret_hash") -> str:
    """``hashed`` unchanged if it is a hash :func:`verify_client_secret` accepts, else a
    :class:`~bus.errors.ConfigError` (a ``ValueError``) naming ``field`` and the rule
    broken, never the value."""
    _parse(hashed, field)
    return hashed


def _parse(hashed: str, field: str) -> _Scrypt:
    parts = hashed.split("$") if isinstance(hashed, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ConfigError(f"{field} is not an scrypt hash of the form {SECRET_HASH_FORM}", fix=_FIX)
    numbers = parts[1:4]
    if not all(_DECIMAL.fullmatch(part) for part in numbers):
        raise ConfigError(f"{field}: n, r and p must be positive whole numbers", fix=_FIX)
    n, r, p = (int(part) for part in numbers)
    if n < SCRYPT_N or n & (n - 1) or r < SCRYPT_R or not SCRYPT_P <= p <= _MAX_P:
        raise ConfigError(
            f"{field}: scrypt parameters weaker than allowed (rule: n a power of 2 at least "
            f"{SCRYPT_N}, r at least {SCRYPT_R}, p from {SCRYPT_P} to {_MAX_P})",
            fix=_FIX,
        )
    if 128 * n * r > MAX_SCRYPT_MEMORY_BYTES:
        raise ConfigError(
            f"{field}: scrypt parameters too costly to check on every token request "
            f"(rule: 128 * n * r at most {MAX_SCRYPT_MEMORY_BYTES // 2**20} MiB)",
            fix=_FIX,
        )
    salt, digest = (_unb64(part) for part in parts[4:])
    if (
        salt is None
        or digest is None
        or not _SALT_BYTES <= len(salt) <= _MAX_PART_BYTES
        or not _HASH_BYTES <= len(digest) <= _MAX_PART_BYTES
    ):
        raise ConfigError(
            f"{field}: salt and hash must be unpadded base64url of {_SALT_BYTES} to "
            f"{_MAX_PART_BYTES} and {_HASH_BYTES} to {_MAX_PART_BYTES} bytes",
            fix=_FIX,
        )
    return _Scrypt(n, r, p, salt, digest)


def _scrypt(secret: str, params: _Scrypt, length: int) -> bytes:
    memory = 128 * params.r * (params.n + 2 + params.p)  # OpenSSL's V and B arrays
    return hashlib.scrypt(
        secret.encode("utf-8"),
        salt=params.salt,
        n=params.n,
        r=params.r,
        p=params.p,
        maxmem=memory + 2**20,
        dklen=length,
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if _B64.fullmatch(text) is None or len(text) % 4 == 1:
        return None
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
