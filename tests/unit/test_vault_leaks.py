"""A known secret appears in no error message, repr or dump of the connection layer."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mlconnector.basware import BaswareCredentials
from mlconnector.connection_store import join_secrets, split_secrets
from mlconnector.connections import Connection, ConnectionInvalid
from mlconnector.visma import VismaCredentials
from mlconnector_cli.connections import secrets_from_text

SECRET = "leak-canary-5e0c1d"


def connection() -> Connection:
    return Connection(
        name="acme",
        visma=VismaCredentials(
            client_id="c", client_secret=SecretStr(SECRET), tenant_id="t", company_id="1"
        ),
        basware=BaswareCredentials(client_id="b", client_secret=SecretStr(SECRET + "-bw")),
        basware_webhook_secret=SecretStr(SECRET + "-hook"),
    )


def test_reprs_and_dumps_mask_every_secret() -> None:
    c = connection()
    for shown in (repr(c), str(c), c.model_dump_json(), str(c.model_dump())):
        assert SECRET not in shown


def test_split_keeps_secrets_out_of_the_settings_and_join_restores_them() -> None:
    settings, secrets = split_secrets(connection())
    assert SECRET not in str(settings)
    assert set(secrets) == {"visma.client_secret", "basware.client_secret",
                            "basware_webhook_secret"}  # fmt: skip
    assert join_secrets("acme", settings, secrets, {}) == connection()


def test_a_stored_connection_that_does_not_validate_says_where_not_what() -> None:
    settings, secrets = split_secrets(connection())
    del settings["visma"]["tenant_id"]
    with pytest.raises(ConnectionInvalid) as caught:
        join_secrets("acme", settings, secrets, {})
    assert "visma.tenant_id: Field required" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"visma_client_secret": "' + SECRET + '", ', "Invalid JSON"),
        ('{"visma_client_secret": "' + SECRET + '"}', "basware_client_secret: Field required"),
        ('{"visma_client_secret": "' + SECRET + '", "basware_client_secret": "x", "typo": "'
         + SECRET + '"}', "typo: Extra inputs are not permitted"),
        (SECRET + "\n", "basware_client_secret: Field required"),
    ],
)  # fmt: skip
def test_bad_secrets_on_stdin_are_named_not_shown(text: str, said: str) -> None:
    with pytest.raises(ConnectionInvalid) as caught:
        secrets_from_text(text)
    assert said in str(caught.value)
    assert SECRET not in str(caught.value)


def test_secrets_on_stdin_as_json_or_lines() -> None:
    as_json = secrets_from_text('{"visma_client_secret": "v", "basware_client_secret": "b"}')
    as_lines = secrets_from_text("v\nb\n\nw\n")
    assert as_json.basware_client_secret.get_secret_value() == "b"
    assert as_lines.basware_webhook_secret is None
    assert as_lines.visma_webhook_secret is not None
    assert as_lines.visma_webhook_secret.get_secret_value() == "w"
