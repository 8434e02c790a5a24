"""The credential vault: secrets sealed with AES-256-GCM under a master key.

Each sealed secret carries the id of the master key that sealed it, so several keys can be
loaded at once and a rotation re-seals secrets one by one while the old key stays readable.
The associated data names the secret's owner and field: a ciphertext copied into another
row or field fails authentication instead of decrypting into the wrong place.

Master keys (base64 of 32 random bytes; `mlconnector keys generate` prints one):
- MLC_MASTER_KEY: the current key, which seals everything new;
- MLC_MASTER_KEY_FILE: a keyring file, one key per line ('#' starts a comment), the first
  line being the current key when MLC_MASTER_KEY is not set;
- MLC_MASTER_KEYS: further keys, comma-separated, still readable (the keys being rotated away);
- MLC_DEV_KEY=1: with no key configured, use (or create) `dev-master.key` in the home folder
  (MLC_HOME, default `.mlconnector/`),
  with a warning: for a laptop demo and tests, never for real credentials.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, SecretBytes, SecretStr

from mlconnector.home import HomeFolder

log = logging.getLogger(__name__)

KEY_BYTES = 32
NONCE_BYTES = 12
_AAD_PREFIX = b"mlconnector-secret/v1"


class VaultError(RuntimeError):
    """A key is missing or malformed, or a secret does not authenticate. Never holds a secret."""


class MasterKey(BaseModel):
    """One AES-256 key and its id (a fingerprint: the id alone reveals nothing of the key)."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    material: SecretBytes

    @classmethod
    def from_bytes(cls, material: bytes) -> MasterKey:
        if len(material) != KEY_BYTES:
            raise VaultError(
                f"a master key must be {KEY_BYTES} bytes (base64), this one has {len(material)}"
            )
        fingerprint = hashlib.sha256(b"mlconnector-key-id\x00" + material).hexdigest()[:16]
        return cls(key_id=f"k-{fingerprint}", material=SecretBytes(material))

    @classmethod
    def from_base64(cls, text: str) -> MasterKey:
        try:
            # Standard or URL-safe alphabet, whichever the operator's tool printed.
            standard = text.strip().replace("-", "+").replace("_", "/")
            material = base64.b64decode(standard, validate=True)
        except (binascii.Error, ValueError):
            raise VaultError("a master key must be base64 text (32 random bytes)") from None
        return cls.from_bytes(material)


def generate_key() -> str:
    """A new master key as base64 text, for MLC_MASTER_KEY or a keyring file."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


class SecretSlot(BaseModel):
    """Where a secret belongs: its owner (a connection id) and its field name."""

    model_config = ConfigDict(frozen=True)

    owner: str
    field: str

    def associated_data(self) -> bytes:
        return b"\x00".join((_AAD_PREFIX, self.owner.encode(), self.field.encode()))

    def __str__(self) -> str:
        return f"{self.field} of {self.owner}"


class SealedSecret(BaseModel):
    """What the database stores: key id, nonce and ciphertext (with the GCM tag)."""

    model_config = ConfigDict(frozen=True)

    key_id: str
    nonce: bytes
    ciphertext: bytes


class Keyring:
    """The loaded master keys: the current one seals, any of them opens."""

    def __init__(self, current: MasterKey, others: Iterable[MasterKey] = ()) -> None:
        self.current = current
        self._keys = {key.key_id: key for key in (*others, current)}

    def __repr__(self) -> str:
        return f"Keyring(current={self.current.key_id!r}, loaded={sorted(self._keys)!r})"

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._keys)

    def seal(self, secret: SecretStr, slot: SecretSlot) -> SealedSecret:
        nonce = os.urandom(NONCE_BYTES)
        cipher = AESGCM(self.current.material.get_secret_value())
        ciphertext = cipher.encrypt(
            nonce, secret.get_secret_value().encode(), slot.associated_data()
        )
        return SealedSecret(key_id=self.current.key_id, nonce=nonce, ciphertext=ciphertext)

    def open(self, sealed: SealedSecret, slot: SecretSlot) -> SecretStr:
        key = self._keys.get(sealed.key_id)
        if key is None:
            raise VaultError(
                f"secret {slot} is sealed under master key {sealed.key_id}, which is not loaded "
                f"(loaded: {', '.join(self.key_ids)}); add it to MLC_MASTER_KEYS"
            )
        try:
            plain = AESGCM(key.material.get_secret_value()).decrypt(
                sealed.nonce, sealed.ciphertext, slot.associated_data()
            )
        except InvalidTag:
            raise VaultError(
                f"secret {slot} does not authenticate under key {sealed.key_id}: "
                "it was altered or belongs to another connection or field"
            ) from None
        return SecretStr(plain.decode())

    def sign(self, purpose: str, message: bytes) -> tuple[str, str]:
        """HMAC-SHA256 of `message` under a key derived from the current master key for
        `purpose` alone; returns (key id, hex signature). The database never holds it."""
        return self.current.key_id, _signature(self.current, purpose, message)

    def signature_valid(self, purpose: str, message: bytes, key_id: str, signature: str) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            raise VaultError(
                f"signed under master key {key_id}, which is not loaded "
                f"(loaded: {', '.join(self.key_ids)}); add it to MLC_MASTER_KEYS"
            )
        return hmac.compare_digest(_signature(key, purpose, message), signature)

    def reseal(self, sealed: SealedSecret, slot: SecretSlot) -> SealedSecret:
        """The same secret sealed under the current key (rotation)."""
        return self.seal(self.open(sealed, slot), slot)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Keyring:
        env = os.environ if environ is None else environ
        keys: list[MasterKey] = []
        if env.get("MLC_MASTER_KEY"):
            keys.append(MasterKey.from_base64(env["MLC_MASTER_KEY"]))
        if env.get("MLC_MASTER_KEY_FILE"):
            keys.extend(_read_keyring_file(Path(env["MLC_MASTER_KEY_FILE"])))
        keys.extend(
            MasterKey.from_base64(text)
            for text in env.get("MLC_MASTER_KEYS", "").split(",")
            if text.strip()
        )
        if not keys and env.get("MLC_DEV_KEY") == "1":
            keys.append(dev_key(HomeFolder.from_env(env).master_key_file))
        if not keys:
            raise VaultError(
                "no master key: set MLC_MASTER_KEY (make one with `mlconnector keys generate`), "
                "or MLC_MASTER_KEY_FILE, or MLC_DEV_KEY=1 for a local development key"
            )
        return cls(keys[0], keys[1:])


def _signature(key: MasterKey, purpose: str, message: bytes) -> str:
    derived = hmac.digest(
        key.material.get_secret_value(), b"mlconnector-sign\x00" + purpose.encode(), "sha256"
    )
    return hmac.new(derived, message, "sha256").hexdigest()


def _read_keyring_file(path: Path) -> list[MasterKey]:
    try:
        lines = path.read_bytes().decode().splitlines()
    except UnicodeDecodeError:
        raise VaultError(f"the keyring file {path} is not text") from None
    except OSError as error:
        raise VaultError(f"cannot read the keyring file {path}: {error.strerror}") from None
    keys = [
        MasterKey.from_base64(line)
        for line in (raw.split("#", 1)[0].strip() for raw in lines)
        if line
    ]
    if not keys:
        raise VaultError(f"the keyring file {path} holds no key")
    return keys


def dev_key(path: Path) -> MasterKey:
    """The development key in `path`, created on first use. Not for real credentials."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(
                f"# development master key, made by MLC_DEV_KEY=1; not for production\n"
                f"{generate_key()}\n"
            )
    log.warning(
        "using the DEVELOPMENT master key in %s: anyone with this file can read the stored "
        "credentials; set MLC_MASTER_KEY for real credentials",
        path,
    )
    return _read_keyring_file(path)[0]
