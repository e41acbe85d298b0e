"""Key files of the control endpoint: creation, modes, validation, authorized_keys."""

from __future__ import annotations

import logging
import stat

import pytest
import zmq
from unitmgr.manager import keys
from unitmgr.manager.paths import resolve


@pytest.fixture
def paths(tmp_path):
    return resolve({"UNITMGR_HOME": str(tmp_path / "home"), "HOME": str(tmp_path)})


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_keys_creates_files_with_private_modes(paths):
    material = keys.ensure_keys(paths)

    assert mode(paths.keys) == 0o700
    assert mode(paths.keys / "server.key") == 0o600
    assert mode(paths.keys / "client.key") == 0o600
    assert mode(paths.authorized_keys) == 0o600
    assert (paths.keys / "server.pub").exists()
    assert (paths.keys / "client.pub").exists()
    assert zmq.curve_public(material.server.secret) == material.server.public
    assert zmq.curve_public(material.client.secret) == material.client.public
    # Public files are one bare key line, ready for `unitmgr authorize-key < client.pub`.
    assert (paths.keys / "client.pub").read_text() == material.client.public.decode() + "\n"


def test_ensure_keys_authorises_local_client(paths):
    material = keys.ensure_keys(paths)

    assert keys.read_authorized_keys(paths.authorized_keys) == {material.client.public}


def test_ensure_keys_is_stable_across_starts(paths):
    first = keys.ensure_keys(paths)
    second = keys.ensure_keys(paths)

    assert first == second
    assert keys.load_client_keys(paths) == first.client
    assert keys.load_server_public(paths) == first.server.public


def test_ensure_keys_rewrites_missing_public_file(paths):
    first = keys.ensure_keys(paths)
    (paths.keys / "server.pub").unlink()

    assert keys.ensure_keys(paths) == first
    assert keys.load_server_public(paths) == first.server.public


def test_group_readable_secret_is_rejected(paths):
    keys.ensure_keys(paths)
    secret = paths.keys / "server.key"
    secret.chmod(0o640)

    with pytest.raises(keys.KeyFileError) as info:
        keys.ensure_keys(paths)
    assert str(secret) in str(info.value)
    assert f"chmod 600 {secret}" in str(info.value)


def test_others_readable_client_secret_is_rejected(paths):
    keys.ensure_keys(paths)
    (paths.keys / "client.key").chmod(0o604)

    with pytest.raises(keys.KeyFileError, match="chmod 600"):
        keys.load_client_keys(paths)


def test_corrupt_secret_names_file_and_problem(paths):
    keys.ensure_keys(paths)
    secret = paths.keys / "client.key"
    secret.write_text("not a key\n")

    with pytest.raises(keys.KeyFileError) as info:
        keys.load_client_keys(paths)
    message = str(info.value)
    assert str(secret) in message
    assert "corrupt" in message
    assert "40 Z85 characters" in message


def test_key_file_with_two_keys_is_corrupt(paths):
    material = keys.ensure_keys(paths)
    public = paths.keys / "server.pub"
    public.write_text(f"{material.server.public.decode()}\n{material.client.public.decode()}\n")

    with pytest.raises(keys.KeyFileError, match="expected one key line, found 2"):
        keys.load_server_public(paths)


def test_mismatched_public_file_is_reported(paths):
    material = keys.ensure_keys(paths)
    (paths.keys / "client.pub").write_text(material.server.public.decode() + "\n")

    with pytest.raises(keys.KeyFileError, match="does not match"):
        keys.load_client_keys(paths)


def test_missing_key_file_is_reported(paths):
    with pytest.raises(keys.KeyFileError, match="client.key is missing"):
        keys.load_client_keys(paths)


def test_authorized_keys_comments_labels_and_bad_lines(paths, caplog):
    good1, _ = zmq.curve_keypair()
    good2, _ = zmq.curve_keypair()
    paths.keys.mkdir(parents=True)
    paths.authorized_keys.write_text(
        "# a comment\n"
        "\n"
        f"{good1.decode()}\n"
        f"   {good2.decode()}   ann@laptop  (work)\n"
        "short-key\n"
        f"{'~' * 40}\n"
    )

    with caplog.at_level(logging.WARNING):
        result = keys.read_authorized_keys(paths.authorized_keys)

    assert result == {good1, good2}
    assert f"{paths.authorized_keys}:5: invalid key" in caplog.text
    assert f"{paths.authorized_keys}:6: invalid key" in caplog.text


def test_missing_authorized_keys_gives_empty_set(paths, caplog):
    with caplog.at_level(logging.WARNING):
        assert keys.read_authorized_keys(paths.authorized_keys) == set()
    assert "is missing" in caplog.text


def test_authorize_key_is_idempotent_and_keeps_label(paths):
    keys.ensure_keys(paths)
    public, _ = zmq.curve_keypair()

    assert keys.authorize_key(paths, public.decode(), "bob@desk\nsecond line") is True
    assert keys.authorize_key(paths, public, "again") is False

    text = paths.authorized_keys.read_text()
    assert text.count(public.decode()) == 1
    assert f"{public.decode()}  bob@desk second line\n" in text
    assert public in keys.read_authorized_keys(paths.authorized_keys)


def test_authorize_key_rejects_invalid_key(paths):
    with pytest.raises(ValueError, match="40 Z85 characters"):
        keys.authorize_key(paths, "abc", "x")
    with pytest.raises(ValueError, match="Z85 alphabet"):
        keys.authorize_key(paths, "~" * 40, "x")
    assert not paths.authorized_keys.exists()


def test_parse_key_rejects_out_of_range_group():
    # "#####" is 85**5 - 1, above 2**32 - 1.
    with pytest.raises(ValueError, match="out of range"):
        keys.parse_key("#" * 40)


def test_parse_public_key_text_reads_pub_file_content():
    public, _ = zmq.curve_keypair()
    text = f"# unitmgr client public key (Z85)\n{public.decode()}\n"

    assert keys.parse_public_key_text(text) == public
    with pytest.raises(ValueError, match="exactly one public key"):
        keys.parse_public_key_text("# nothing here\n")


def test_ensure_keys_tightens_keys_directory(paths):
    paths.keys.mkdir(parents=True, mode=0o755)
    paths.keys.chmod(0o755)

    keys.ensure_keys(paths)

    assert mode(paths.keys) == 0o700
