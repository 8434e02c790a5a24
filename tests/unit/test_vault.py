"""The vault: AES-256-GCM sealing, key ids, associated data, keyrings from the environment."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from pydantic import SecretStr

from mlconnector.vault import Keyring, MasterKey, SecretSlot, VaultError, generate_key

SECRET = SecretStr("s3cr3t-visma-client-secret")
SLOT = SecretSlot(owner="0b7c9b1e-conn-a", field="visma.client_secret")


def keyring(*keys: str) -> Keyring:
    loaded = [MasterKey.from_base64(k) for k in keys]
    return Keyring(loaded[0], loaded[1:])


def test_sealed_secret_opens_to_the_same_value_and_hides_it() -> None:
    ring = keyring(generate_key())
    sealed = ring.seal(SECRET, SLOT)
    assert SECRET.get_secret_value().encode() not in sealed.ciphertext
    assert sealed.key_id == ring.current.key_id
    assert ring.open(sealed, SLOT).get_secret_value() == SECRET.get_secret_value()


def test_two_seals_of_one_secret_differ() -> None:
    ring = keyring(generate_key())
    assert ring.seal(SECRET, SLOT).ciphertext != ring.seal(SECRET, SLOT).ciphertext


@pytest.mark.parametrize(
    "moved",
    [
        SecretSlot(owner="another-connection", field="visma.client_secret"),
        SecretSlot(owner="0b7c9b1e-conn-a", field="basware.client_secret"),
    ],
)
def test_ciphertext_moved_to_another_row_or_field_does_not_open(moved: SecretSlot) -> None:
    ring = keyring(generate_key())
    sealed = ring.seal(SECRET, SLOT)
    with pytest.raises(VaultError, match="does not authenticate"):
        ring.open(sealed, moved)


def test_secret_sealed_under_an_unloaded_key_names_the_key() -> None:
    old, new = generate_key(), generate_key()
    sealed = keyring(old).seal(SECRET, SLOT)
    with pytest.raises(VaultError, match=MasterKey.from_base64(old).key_id):
        keyring(new).open(sealed, SLOT)


def test_reseal_moves_a_secret_to_the_current_key() -> None:
    old, new = generate_key(), generate_key()
    sealed = keyring(old).seal(SECRET, SLOT)
    rotated = keyring(new, old).reseal(sealed, SLOT)
    assert rotated.key_id == MasterKey.from_base64(new).key_id
    assert keyring(new).open(rotated, SLOT) == SECRET


def test_key_must_be_32_bytes_of_base64() -> None:
    with pytest.raises(VaultError, match="32 bytes"):
        MasterKey.from_base64(base64.b64encode(b"short").decode())
    with pytest.raises(VaultError, match="base64"):
        MasterKey.from_base64("not base64 at all!")


def test_url_safe_and_standard_alphabets_give_the_same_key() -> None:
    raw = bytes(range(224, 256))  # encodes with '+' and '/' in the standard alphabet
    standard = base64.b64encode(raw).decode()
    assert "/" in standard or "+" in standard
    url_safe = base64.urlsafe_b64encode(raw).decode()
    assert MasterKey.from_base64(standard).key_id == MasterKey.from_base64(url_safe).key_id


def test_environment_keyring_current_key_first_then_file_then_older_keys(tmp_path: Path) -> None:
    current, in_file, older = generate_key(), generate_key(), generate_key()
    keyfile = tmp_path / "keyring"
    keyfile.write_text(f"# keyring\n{in_file}  # second\n\n")
    ring = Keyring.from_env(
        {"MLC_MASTER_KEY": current, "MLC_MASTER_KEY_FILE": str(keyfile), "MLC_MASTER_KEYS": older}
    )
    assert ring.current.key_id == MasterKey.from_base64(current).key_id
    assert set(ring.key_ids) == {MasterKey.from_base64(k).key_id for k in (current, in_file, older)}


def test_keyring_file_alone_makes_its_first_line_current(tmp_path: Path) -> None:
    first, second = generate_key(), generate_key()
    keyfile = tmp_path / "keyring"
    keyfile.write_text(f"{first}\n{second}\n")
    ring = Keyring.from_env({"MLC_MASTER_KEY_FILE": str(keyfile)})
    assert ring.current.key_id == MasterKey.from_base64(first).key_id


def test_no_key_configured_is_a_clear_error() -> None:
    with pytest.raises(VaultError, match="MLC_MASTER_KEY"):
        Keyring.from_env({})


def test_dev_key_is_created_once_and_reused_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"MLC_DEV_KEY": "1", "MLC_HOME": str(tmp_path)}
    first = Keyring.from_env(env)
    second = Keyring.from_env(env)
    assert first.current.key_id == second.current.key_id
    assert (tmp_path / "dev-master.key").stat().st_mode & 0o077 == 0
    assert "DEVELOPMENT master key" in caplog.text


def test_keys_and_keyrings_do_not_show_their_material() -> None:
    text = generate_key()
    key = MasterKey.from_base64(text)
    raw = key.material.get_secret_value()
    for shown in (repr(key), str(key), repr(Keyring(key)), key.model_dump_json()):
        assert text not in shown
        assert raw.hex() not in shown
