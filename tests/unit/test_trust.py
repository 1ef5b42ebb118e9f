"""The trust store: files on disk, refusals, scopes, and the `stella trust` commands."""

from __future__ import annotations

import argparse
import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from app import output
from app.cli import common_options
from app.commands import trust as trust_cmd
from core.errors import BadInputError, ExitCode, NotFoundError, StellaError, UsageError
from core.home import Home
from core.keys import KeyAlgorithm, keyid_of
from core.trust import TrustedKey, TrustStore


def _pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _p256() -> bytes:
    return _pem(ec.generate_private_key(ec.SECP256R1()))


def _ed25519() -> bytes:
    return _pem(ed25519.Ed25519PrivateKey.generate())


def test_add_writes_pem_and_metadata_and_lists_the_key(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    pem = _p256()
    key = store.add("release", pem, profiles=["mirror:full", "json:raw", "mirror:full"], tenants=["acme"])
    keys_dir = tmp_path / "trust" / "keys"
    assert (keys_dir / "release.pem").read_bytes() == pem
    meta = json.loads((keys_dir / "release.json").read_text())
    assert meta == {
        "label": "release",
        "keyid": key.keyid,
        "algorithm": "ecdsa-p256",
        "profiles": ["json:raw", "mirror:full"],
        "tenants": ["acme"],
        "added": key.added,
    }
    assert key.added.endswith("Z")
    assert store.list() == [key]
    assert store.get("release") == key
    assert key.keyid == keyid_of(serialization.load_pem_public_key(pem))  # type: ignore[arg-type]


def test_ed25519_keys_are_accepted(tmp_path: Path) -> None:
    key = TrustStore(Home(tmp_path)).add("edge", _ed25519())
    assert key.algorithm is KeyAlgorithm.ED25519


def test_duplicate_label_is_refused(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    store.add("release", _p256())
    with pytest.raises(UsageError, match="'release' already exists"):
        store.add("release", _ed25519())


def test_same_key_under_a_second_label_is_refused(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    pem = _p256()
    store.add("release", pem)
    with pytest.raises(UsageError, match="already trusted as 'release'"):
        store.add("release-copy", pem)
    assert [k.label for k in store.list()] == ["release"]


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "unsupported key type RSA-2048"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "unsupported key type ECDSA secp384r1"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            "this is a private key",
        ),
        (b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "a certificate, not a public key"),
        (b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG9j user@host\n", "not a PEM public key"),
    ],
    ids=["rsa", "p384", "private-key", "certificate", "ssh-key"],
)
def test_unusable_keys_are_refused_with_a_clear_message(tmp_path: Path, pem: bytes, message: str) -> None:
    store = TrustStore(Home(tmp_path))
    with pytest.raises(BadInputError, match=message) as err:
        store.add("k", pem, source="k.pem")
    assert err.value.exit_code == ExitCode.BAD_INPUT and err.value.path == "k.pem"
    assert store.list() == []


def test_bad_labels_are_refused(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    for label in ("../escape", "", "a b", "x" * 65):
        with pytest.raises(UsageError, match="invalid label"):
            store.add(label, _p256())


def test_remove_and_missing_labels(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    key = store.add("release", _p256())
    assert store.remove("release") == key
    assert store.list() == []
    assert not (tmp_path / "trust" / "keys" / "release.pem").exists()
    with pytest.raises(NotFoundError, match="no trusted key labelled 'release'"):
        store.remove("release")
    with pytest.raises(NotFoundError):
        store.get("release")


def test_a_replaced_key_file_is_detected_and_can_still_be_removed(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    store.add("release", _p256())
    pem_path = tmp_path / "trust" / "keys" / "release.pem"
    pem_path.write_bytes(_p256())  # someone swapped the key behind the store's back
    with pytest.raises(BadInputError, match="not the one added as 'release'") as err:
        store.list()
    assert err.value.path == str(pem_path)
    assert store.remove("release") is None
    assert store.list() == []


def test_scope_empty_means_any_and_profiles_match_by_kind(tmp_path: Path) -> None:
    store = TrustStore(Home(tmp_path))
    anyone = store.add("anyone", _p256())
    mirror = store.add("mirror", _p256(), profiles=["mirror"], tenants=["acme", "globex"])
    trivy = store.add("trivy", _ed25519(), profiles=["trivy:db"])
    assert anyone.allows("json:raw", "whoever")
    assert mirror.allows("mirror:full", "acme") and mirror.allows("mirror:delta", "globex")
    assert not mirror.allows("mirror:full", "initech")
    assert not mirror.allows("json:raw", "acme")
    assert trivy.allows("trivy:db", "acme") and not trivy.allows("trivy:java-db", "acme")
    assert [k.label for k in store.keys(profile="mirror:delta", tenant="acme")] == ["anyone", "mirror"]
    assert [k.label for k in store.keys(tenant="initech")] == ["anyone", "trivy"]
    assert [k.label for k in store.keys(profile=None)] == ["anyone", "mirror", "trivy"]


def test_trusted_key_hint_is_the_sigstore_hint(tmp_path: Path) -> None:
    import base64
    import hashlib

    pem = _p256()
    key = TrustStore(Home(tmp_path)).add("release", pem)
    der = serialization.load_pem_public_key(pem).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert key.hint == base64.b64encode(hashlib.sha256(der).digest()).decode()
    assert isinstance(key, TrustedKey) and key.public_pem == pem


# --- `stella trust ...` through the real argparse wiring -------------------------------------------


def _stella_trust(home: Path, *argv: str | Path) -> tuple[int, str, str]:
    """Run `stella trust ARGV` the way app.cli.main does: handler, StellaError -> exit code."""
    parser = argparse.ArgumentParser(prog="stella")
    trust_cmd.register(parser.add_subparsers(dest="command"), common_options())
    args = parser.parse_args(["trust", *[str(a) for a in argv], "--home", str(home)])
    out, err = io.StringIO(), io.StringIO()
    saved = output.stdout.file, output.stderr.file
    output.stdout.file, output.stderr.file = out, err
    try:
        with redirect_stdout(out):
            code = int(args.handler(args))
    except StellaError as exc:
        err.write(exc.diagnostics())
        code = int(exc.exit_code)
    finally:
        output.stdout.file, output.stderr.file = saved
    return code, out.getvalue(), err.getvalue()


def test_cli_add_list_remove(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(_p256())
    code, out, _ = _stella_trust(home, "add", "release", pub, "--profile", "mirror:full", "--tenant", "acme", "--json")
    assert code == 0
    added = json.loads(out)
    assert added["label"] == "release" and added["profiles"] == ["mirror:full"] and added["tenants"] == ["acme"]
    assert len(added["keyid"]) == 64 and added["algorithm"] == "ecdsa-p256"

    code, out, _ = _stella_trust(home, "list", "--json")
    assert code == 0 and json.loads(out) == {"keys": [added]}
    code, out, _ = _stella_trust(home, "list")
    assert code == 0 and "release" in out and "mirror:full" in out and added["keyid"][:16] in out

    code, out, _ = _stella_trust(home, "remove", "release", "--json")
    assert code == 0 and json.loads(out) == {"removed": "release", "keyid": added["keyid"]}
    code, out, _ = _stella_trust(home, "list")
    assert code == 0 and "no trusted keys" in out


def test_cli_refusals_map_to_exit_codes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(_p256())
    assert _stella_trust(home, "add", "release", pub)[0] == 0
    code, _, err = _stella_trust(home, "add", "again", pub)
    assert code == ExitCode.USAGE and "already trusted as 'release'" in err
    rsa_pub = tmp_path / "rsa.pub"
    rsa_pub.write_bytes(_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    code, _, err = _stella_trust(home, "add", "rsa", rsa_pub)
    assert code == ExitCode.BAD_INPUT and str(rsa_pub) in err and "RSA-2048" in err
    code, _, err = _stella_trust(home, "add", "gone", tmp_path / "missing.pub")
    assert code == ExitCode.ENVIRONMENT and "missing.pub" in err
    code, _, err = _stella_trust(home, "remove", "nobody")
    assert code == ExitCode.BAD_INPUT and "no trusted key labelled 'nobody'" in err
