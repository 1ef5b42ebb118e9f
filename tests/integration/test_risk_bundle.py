"""risk:bundle end to end: real KEV and EPSS data -> signed bundle -> verify (freshness policy) -> import."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from core.home import Home
from core.store import Store
from tests.conftest import FIXTURES, CliResult
from tests.integration.bundle_helpers import flip, read_members, write_members

Stella = Callable[..., CliResult]
KEV_JSON = FIXTURES / "kev" / "known_exploited_vulnerabilities.json"
KEV_CSV = FIXTURES / "kev" / "known_exploited_vulnerabilities.csv"
KEV_OLDER = FIXTURES / "kev" / "older" / "known_exploited_vulnerabilities-2025.01.24.json"
EPSS = FIXTURES / "epss" / "example-1.csv"


def _rows(home: Path, tenant: str = "default") -> dict[str, list[tuple[Any, ...]]]:
    """Every KEV/EPSS row of a tenant, without import times, in a stable order."""
    queries = {
        "raw": "SELECT sha256, size, format, kind, media_type, document_id, subject FROM raw_documents"
        " WHERE tenant = ? AND kind IN ('kev', 'epss') ORDER BY sha256",
        "kev_catalogs": "SELECT * EXCLUDE (tenant) FROM kev_catalogs WHERE tenant = ? ORDER BY ALL",
        "kev_entries": "SELECT * EXCLUDE (tenant) FROM kev_entries WHERE tenant = ? ORDER BY ALL",
        "epss_snapshots": "SELECT * EXCLUDE (tenant) FROM epss_snapshots WHERE tenant = ? ORDER BY ALL",
        "epss_scores": "SELECT * EXCLUDE (tenant) FROM epss_scores WHERE tenant = ? ORDER BY ALL",
    }
    with Store.open(Home(home), read_only=True) as store:
        return {name: store.conn.execute(sql, [tenant]).fetchall() for name, sql in queries.items()}


def _raw_content(home: Path, sha: str) -> bytes:
    with Store.open(Home(home), read_only=True) as store:
        return store.raw_bytes("default", sha)


def _members(bundle: Path) -> dict[str, bytes]:
    return {info.name: data for info, data in read_members(bundle)}


@pytest.fixture
def signer(stella: Stella, tmp_path: Path) -> Path:
    assert stella("keys", "generate", "k").code == 0
    pub = tmp_path / "k.pub"
    assert stella("keys", "export-public", "k", "--out", pub).code == 0
    return pub


TODAY = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)


def redated(tmp_path: Path, day: datetime) -> tuple[Path, Path]:
    """The real KEV catalog and EPSS snapshot, published on ``day`` (only their release dates changed)."""
    kev = tmp_path / "known_exploited_vulnerabilities.json"
    kev.write_bytes(
        KEV_JSON.read_bytes().replace(b'"2025-08-25T17:04:19.9796Z"', f'"{day:%Y-%m-%d}T17:04:19.9796Z"'.encode())
    )
    epss = tmp_path / f"epss_scores-{day:%Y-%m-%d}.csv"
    epss.write_bytes(EPSS.read_bytes().replace(b"score_date:2025-02-20", f"score_date:{day:%Y-%m-%d}".encode()))
    return kev, epss


@pytest.fixture
def bundle(stella: Stella, signer: Path, tmp_path: Path) -> Path:
    """A risk bundle of the real KEV catalog and a gzipped real EPSS snapshot (as FIRST ships it), released today."""
    kev, epss = redated(tmp_path, TODAY)
    gz = tmp_path / f"{epss.name}.gz"
    gz.write_bytes(gzip.compress(epss.read_bytes(), mtime=0))
    assert stella("import", "--quiet", kev, gz).code == 0
    out = tmp_path / "risk.tar.zst"
    res = stella("export", "run", "--profile", "risk:bundle", "--provider", "kev", "--provider", "epss")
    assert res.code == 2 and "no signing key" in res.err  # the key is required, as for every profile
    res = stella(
        "export", "run", "--profile", "risk:bundle", "--provider", "kev", "--provider", "epss", "--key", "k",
        "--out", out, "--json",
    )  # fmt: skip
    assert res.code == 0, res.err
    return out


def _created(bundle: Path) -> datetime:
    manifest = json.loads(_members(bundle)["export.json"])
    return datetime.fromisoformat(manifest["createdAt"].removesuffix("Z"))


def _at(when: datetime) -> str:
    return when.isoformat() + "Z"


# -- the bundle -------------------------------------------------------------------------------------------
def test_bundle_ships_raw_datasets_byte_for_byte_with_snapshot_times_and_signed_expiry(
    stella: Stella, bundle: Path, signer: Path, home: Path, tmp_path: Path
) -> None:
    members = _members(bundle)
    kev_bytes = (tmp_path / "known_exploited_vulnerabilities.json").read_bytes()
    assert members["providers/kev/known_exploited_vulnerabilities.json"] == kev_bytes
    epss_bytes = (tmp_path / f"epss_scores-{TODAY:%Y-%m-%d}.csv").read_bytes()
    assert members["providers/epss/epss_scores.csv"] == epss_bytes  # the decompressed bytes as imported
    manifest = json.loads(members["export.json"])
    risk = manifest["risk"]
    # Each provider's data goes stale its window after its own snapshot time, not after the build.
    kev_snapshot = TODAY + timedelta(hours=17, minutes=4, seconds=19, microseconds=979600)
    # A snapshot time after the build (before 17:04 UTC this catalog is dated later today) counts from the build.
    kev_from = min(kev_snapshot, _created(bundle))
    assert {p["name"]: p["expiresAt"] for p in risk["providers"]} == {
        "epss": _at(TODAY + timedelta(days=7)),
        "kev": _at(kev_from + timedelta(days=14)),
    }
    assert risk["expiresAt"] == _at(TODAY + timedelta(days=7))
    assert {p["name"]: p["snapshotAt"] for p in risk["providers"]} == {
        "epss": _at(TODAY),
        "kev": _at(kev_snapshot),
    }
    inner = json.loads(members["risk/manifest.json"])
    kev = next(p for p in inner["providers"] if p["name"] == "kev")
    assert kev["dataset"]["catalogVersion"] == "2025.08.25" and kev["dataset"]["rows"] == 1404
    assert kev["dataset"]["sha256"] == hashlib.sha256(kev_bytes).hexdigest()
    epss = next(p for p in inner["providers"] if p["name"] == "epss")
    assert epss["dataset"]["modelVersion"] == "v2023.03.01" and epss["dataset"]["rows"] == 5
    envelope = json.loads(members["risk/manifest.dsse.json"])
    assert envelope["payloadType"] == "application/vnd.stellaops.risk.manifest+json"
    assert envelope["payload"] == __import__("base64").b64encode(members["risk/manifest.json"]).decode()
    assert manifest["counts"] == {"providers": 2, "kevEntries": 1404, "epssScores": 5}
    # The plain bundle verifier accepts it too: the bundle contract is the same as every profile's.
    assert stella("verify", bundle, "--key", signer).code == 0


def test_round_trip_into_a_fresh_home_gives_the_same_rows(
    stella: Stella, bundle: Path, signer: Path, home: Path, tmp_path: Path
) -> None:
    other = tmp_path / "receiver"
    res = stella("risk", "bundle", "import", bundle, "--home", other, "--key", signer, "--json")
    assert res.code == 0, res.err
    body: Any = res.json()
    assert body["imported"] is True and body["summary"]["imported"] == 2
    assert {d["provider"] for d in body["datasets"]} == {"kev", "epss"}
    sent, received = _rows(home), _rows(other)
    assert len(received["kev_entries"]) == 1404 and len(received["epss_scores"]) == 5
    assert received == sent
    kev_bytes = (tmp_path / "known_exploited_vulnerabilities.json").read_bytes()
    assert _raw_content(other, hashlib.sha256(kev_bytes).hexdigest()) == kev_bytes
    # Importing the same bundle again changes nothing.
    again: Any = stella("risk", "bundle", "import", bundle, "--home", other, "--key", signer, "--json").json()
    assert again["summary"]["imported"] == 0 and again["summary"]["duplicates"] == 2
    assert _rows(other) == sent


def test_kev_csv_form_round_trips_and_takes_its_newest_date_added_as_snapshot(
    stella: Stella, signer: Path, tmp_path: Path
) -> None:
    assert stella("import", "--quiet", KEV_CSV).code == 0
    out = tmp_path / "kev.tar.zst"
    assert (
        stella("export", "run", "--profile", "risk:bundle", "--provider", "kev", "--key", "k", "--out", out).code == 0
    )
    members = _members(out)
    assert members["providers/kev/known_exploited_vulnerabilities.csv"] == KEV_CSV.read_bytes()
    assert not any(name.startswith("providers/epss/") for name in members)
    risk = json.loads(members["export.json"])["risk"]
    assert [(p["name"], p["snapshotAt"]) for p in risk["providers"]] == [("kev", "2025-08-25T00:00:00Z")]
    other = tmp_path / "receiver"
    res = stella("risk", "bundle", "import", out, "--home", other, "--key", signer, "--policy", "warn")
    assert res.code == 0, res.err
    assert "kev data of 2025-08-25: stale since 2025-09-08T00:00:00Z" in res.out
    assert _rows(other)["kev_entries"] == _rows(tmp_path / "home")["kev_entries"]


def test_newest_catalog_is_taken_and_a_retry_is_byte_identical(stella: Stella, signer: Path, tmp_path: Path) -> None:
    assert stella("import", "--quiet", KEV_OLDER, KEV_JSON, EPSS).code == 0
    first = tmp_path / "a.tar.zst"
    run: Any = stella(
        "export", "run", "--profile", "risk:bundle", "--provider", "epss=36h", "--provider", "kev", "--key", "k",
        "--out", first, "--json",
    ).json()  # fmt: skip
    members = _members(first)
    assert members["providers/kev/known_exploited_vulnerabilities.json"] == KEV_JSON.read_bytes()
    provenance = json.loads(members["provenance.json"])
    names = {d["name"] for d in provenance["predicate"]["buildDefinition"]["resolvedDependencies"]}
    assert names == {"kev:2025.08.25", "epss:2025-02-20"}  # the older catalog was not shipped
    assert run["parameters"]["options"] == {
        "providers": [{"name": "epss", "freshnessSeconds": 129600}, {"name": "kev", "freshnessSeconds": 1209600}]
    }
    risk = json.loads(members["export.json"])["risk"]
    assert risk["expiresAt"] == "2025-02-21T12:00:00Z"  # 36 hours after the EPSS snapshot's score_date
    shown: Any = stella("export", "show", run["runId"], "--json").json()
    assert [e["type"] for e in shown["events"]][:3] == ["planned", "started", "succeeded"]
    again = tmp_path / "b.tar.zst"
    res = stella("export", "retry", run["runId"], "--key", "k", "--out", again)
    assert res.code == 0, res.err
    assert again.read_bytes() == first.read_bytes()


def test_unknown_provider_fails_fast_naming_it(stella: Stella, signer: Path) -> None:
    assert stella("import", "--quiet", KEV_JSON).code == 0
    res = stella("export", "run", "--profile", "risk:bundle", "--provider", "kev", "--provider", "nvd", "--key", "k")
    assert res.code == 2
    assert "unknown risk provider 'nvd'" in res.err and "epss, kev" in res.err
    runs: Any = stella("export", "runs", "--json").json()
    assert runs["runs"] == []  # refused before anything was planned
    res = stella("export", "run", "--profile", "risk:bundle", "--provider", "kev=soon", "--key", "k")
    assert res.code == 3 and "not a positive duration" in res.err
    # A provider with no dataset in the selection fails the run and says what to do.
    res = stella("export", "run", "--profile", "risk:bundle", "--provider", "epss", "--key", "k", "--json")
    assert res.code == 2 and "no EPSS dataset" in res.out + res.err


# -- freshness policy ---------------------------------------------------------------------------------------
def test_expired_bundle_is_refused_under_block_and_accepted_with_a_warning_under_warn(
    stella: Stella, bundle: Path, signer: Path
) -> None:
    created = _created(bundle)
    res = stella("risk", "bundle", "verify", bundle, "--key", signer)  # fresh now, default block
    assert res.code == 0, res.err
    assert f"epss data of {TODAY:%Y-%m-%d}: fresh until {_at(TODAY + timedelta(days=7))}" in res.out
    later = _at(created + timedelta(days=30))
    res = stella("risk", "bundle", "verify", bundle, "--key", signer, "--at", later)
    assert res.code == 7
    assert f"epss data of {TODAY:%Y-%m-%d} is stale since {_at(TODAY + timedelta(days=7))}" in res.err
    assert "policy block" in res.err
    body: Any = stella("risk", "bundle", "verify", bundle, "--key", signer, "--at", later, "--json").json()
    assert body["verified"] is False and body["exitCode"] == 7 and body["error"]["error"] == "policy"
    res = stella("risk", "bundle", "verify", bundle, "--key", signer, "--at", later, "--policy", "warn")
    assert res.code == 0
    assert "warning:" in res.err and "accepted under policy warn" in res.err
    body = stella("risk", "bundle", "verify", bundle, "--key", signer, "--at", later, "--policy", "warn", "--json")
    parsed: Any = body.json()
    assert parsed["verified"] is True
    assert {p["name"]: p["status"] for p in parsed["freshness"]["providers"]} == {
        "epss": "expired-accepted",
        "kev": "expired-accepted",
    }


def test_grace_window_accepts_inside_and_refuses_outside(stella: Stella, bundle: Path, signer: Path) -> None:
    epss_expiry = TODAY + timedelta(days=7)
    inside = _at(epss_expiry + timedelta(hours=47))
    res = stella(
        "risk", "bundle", "verify", bundle, "--key", signer, "--policy", "grace", "--grace", "2d", "--at", inside
    )
    assert res.code == 0, res.err
    assert "within the grace window until " + _at(epss_expiry + timedelta(days=2)) in res.err
    outside = _at(epss_expiry + timedelta(hours=49))
    res = stella(
        "risk", "bundle", "verify", bundle, "--key", signer, "--policy", "grace", "--grace", "2d", "--at", outside
    )
    assert res.code == 7 and "grace window ended" in res.err
    # The default grace window is 3 days.
    assert stella("risk", "bundle", "verify", bundle, "--key", signer, "--policy", "grace", "--at", outside).code == 0
    res = stella("risk", "bundle", "verify", bundle, "--key", signer, "--grace", "2d")
    assert res.code == 2 and "--policy grace" in res.err


def test_import_of_an_expired_bundle_under_block_writes_nothing(
    stella: Stella, bundle: Path, signer: Path, tmp_path: Path
) -> None:
    other = tmp_path / "receiver"
    later = _at(_created(bundle) + timedelta(days=30))
    res = stella("risk", "bundle", "import", bundle, "--home", other, "--key", signer, "--at", later)
    assert res.code == 7
    assert not (other / "store.duckdb").exists() or _rows(other)["raw"] == []
    res = stella(
        "risk", "bundle", "import", bundle, "--home", other, "--key", signer, "--at", later, "--policy", "warn"
    )
    assert res.code == 0 and "warning:" in res.err
    assert len(_rows(other)["kev_entries"]) == 1404
    res = stella("risk", "bundle", "import", bundle, "--home", other, "--key", signer, "--tenant", "other")
    assert res.code == 7 and "belongs to tenant 'default'" in res.err


def test_old_data_is_stale_from_its_own_date_whatever_the_build_time(
    stella: Stella, signer: Path, tmp_path: Path
) -> None:
    """The real fixtures are a KEV catalog of 2025-08-25 and an EPSS snapshot of 2025-02-20: a bundle built from
    them today is stale at once, and every surface says so with the data's date."""
    assert stella("import", "--quiet", KEV_JSON, EPSS).code == 0
    out = tmp_path / "old.tar.zst"
    res = stella("export", "run", "--profile", "risk:bundle", "--key", "k", "--out", out)
    assert res.code == 0, res.err  # built (the receiver's policy decides), with a warning on stderr
    assert "warning:" in res.err and "the kev data of 2025-08-25 went stale at 2025-09-08T17:04:19.979600Z" in res.err
    assert "the epss data of 2025-02-20 went stale at 2025-02-27T00:00:00Z" in res.err
    res = stella("risk", "bundle", "verify", out, "--key", signer)
    assert res.code == 7
    assert "kev data of 2025-08-25 is stale since 2025-09-08T17:04:19.979600Z" in res.err
    body: Any = stella("risk", "bundle", "verify", out, "--key", signer, "--json").json()
    assert {p["name"]: (p["snapshotAt"][:10], p["status"]) for p in body["freshness"]["providers"]} == {
        "epss": ("2025-02-20", "refused"),
        "kev": ("2025-08-25", "refused"),
    }
    res = stella("risk", "bundle", "verify", out, "--key", signer, "--policy", "warn")
    assert res.code == 0, res.err
    assert "kev data of 2025-08-25: stale since 2025-09-08T17:04:19.979600Z (accepted under policy warn)" in res.out
    res = stella("risk", "bundle", "import", out, "--home", tmp_path / "r", "--key", signer, "--policy", "warn")
    assert res.code == 0, res.err
    assert "epss data of 2025-02-20: stale since 2025-02-27T00:00:00Z" in res.out


def test_fresh_data_builds_without_a_warning(stella: Stella, signer: Path, tmp_path: Path) -> None:
    kev, epss = redated(tmp_path, TODAY - timedelta(days=2))
    assert stella("import", "--quiet", kev, epss).code == 0
    res = stella("export", "run", "--profile", "risk:bundle", "--key", "k", "--out", tmp_path / "r.tar.zst")
    assert res.code == 0, res.err
    assert "warning" not in res.err


# -- integrity and signatures --------------------------------------------------------------------------
def test_tampered_or_foreign_bundles_fail_with_the_right_exit_code(
    stella: Stella, bundle: Path, signer: Path, tmp_path: Path
) -> None:
    members = read_members(bundle)
    tampered = [(info, flip(data) if info.name == "providers/epss/epss_scores.csv" else data) for info, data in members]
    bad = write_members(tmp_path / "tampered.tar.zst", tampered)
    other = tmp_path / "receiver"
    assert stella("risk", "bundle", "import", bad, "--home", other, "--key", signer).code == 4
    assert not (other / "store.duckdb").exists() or _rows(other)["raw"] == []
    stripped = write_members(tmp_path / "unsigned.tar.zst", [m for m in members if m[0].name != "export.json.sig"])
    assert stella("risk", "bundle", "verify", stripped, "--key", signer).code == 5
    assert stella("keys", "generate", "stranger").code == 0
    stranger = tmp_path / "stranger.pub"
    assert stella("keys", "export-public", "stranger", "--out", stranger).code == 0
    assert stella("risk", "bundle", "verify", bundle, "--key", stranger).code == 5
    # Without --key the trust store decides: empty, so no trusted signer; trusted once added.
    assert stella("risk", "bundle", "verify", bundle).code == 5
    assert stella("trust", "add", "risk-feed", signer).code == 0
    assert stella("risk", "bundle", "verify", bundle).code == 0
    # Another profile's bundle is not a risk bundle.
    plain = tmp_path / "plain.tar.zst"
    assert stella("export", "run", "--profile", "json:raw", "--key", "k", "--out", plain, "--allow-empty").code == 0
    res = stella("risk", "bundle", "verify", plain, "--key", signer)
    assert res.code == 3 and "not a risk bundle" in res.err
