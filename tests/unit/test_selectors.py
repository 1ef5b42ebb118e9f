"""Selectors: parsing with errors that name the selector, and input resolution against real samples."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.sources.registry import SOURCES, format_names
from core.errors import BadInputError, ExitCode, PolicyRefusal, UsageError
from core.home import Home
from core.ingest import Importer
from core.selectors import InputRef, Selectors, parse_selectors, resolve_inputs
from core.store import Store

SAMPLES = Path(__file__).parent.parent.parent / "samples"
RAW = ("advisory", "vex", "sbom")
ALL = ("advisory", "vex", "sbom", "attestation", "kev", "epss", "policy", "findings")


def _sha(rel: str) -> str:
    return hashlib.sha256((SAMPLES / rel).read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(Home(tmp_path / "home")) as s:
        Importer(s, SOURCES, tenant="acme").run([SAMPLES])
        yield s


def _ids(refs: list[InputRef]) -> list[str]:
    return [r.document_id for r in refs]


def _resolve(store: Store, args: list[str], types: tuple[str, ...] = RAW) -> list[InputRef]:
    return list(resolve_inputs(store, "acme", parse_selectors(args), types))


# -- parsing --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "words"),
    [
        (["ecosystm=npm"], UsageError, "unknown selector 'ecosystm'"),
        (["ecosystem"], UsageError, "selector 'ecosystem' is not KEY=VALUE"),
        (["ecosystem="], BadInputError, "'ecosystem=' has an empty value"),
        (["modified_since=yesterday"], BadInputError, "selector 'modified_since=yesterday'"),
        (["modified_since=2024-02-30"], BadInputError, "is not a calendar date"),
        (["modified_since=2024-01-01T10:00:00"], BadInputError, "needs Z or an offset"),
        (["published_until=2024-13-01T00:00:00Z"], BadInputError, "is not a valid time"),
        (["purl=npm/lodash"], BadInputError, "selector 'purl=npm/lodash': not a package URL"),
        (["tenant=a b"], BadInputError, "is not a tenant name"),
        (["tenant=a", "tenant=b"], BadInputError, "'tenant' is given twice"),
        (["modified_since=2024-02-01", "modified_until=2024-01-31"], BadInputError, "the window is empty"),
        (["include_id=GO-2020-0001", "exclude_id=go-2020-0001"], BadInputError, "both included and excluded"),
        (["format=osvv"], BadInputError, "unknown source format 'osvv'"),
    ],
)
def test_bad_selectors_name_the_selector_and_the_reason(args: list[str], error: type[Exception], words: str) -> None:
    with pytest.raises(error) as err:
        parse_selectors(args, known_formats=format_names())
    assert words in str(err.value) or words in (getattr(err.value, "hint", None) or "")
    expected = ExitCode.USAGE if error is UsageError else ExitCode.BAD_INPUT
    assert err.value.exit_code == expected  # type: ignore[attr-defined]


def test_canonical_form_is_independent_of_order_and_spelling() -> None:
    a = parse_selectors(
        ["ecosystem=npm", "modified_since=2024-01-01T02:00:00+02:00", "ecosystem=PyPI", "ecosystem=npm", "tenant=acme"]
    )
    b = parse_selectors(["tenant=acme", "ecosystem=PyPI", "modified_since=2024-01-01T00:00:00Z", "ecosystem=npm"])
    assert a == b
    assert a.to_dict() == {"tenant": "acme", "modified_since": "2024-01-01T00:00:00Z", "ecosystem": ["PyPI", "npm"]}
    assert Selectors.from_dict(a.to_dict()) == a
    assert parse_selectors(a.to_args()) == a
    assert parse_selectors([]).to_dict() == {}
    # A fraction is kept (to the microsecond), never rounded up past the bound the user wrote.
    assert parse_selectors(["modified_until=2024-01-01T00:00:00.1234567Z"]).modified_until == (
        "2024-01-01T00:00:00.123456Z"
    )


# -- resolution -----------------------------------------------------------------------------------


def test_default_selection_takes_the_latest_revision_in_subject_order(store: Store) -> None:
    refs = _resolve(store, [])
    assert sorted(r.kind for r in refs) == ["advisory"] * 6 + ["sbom"] * 2 + ["vex"] * 3
    # Deterministic order: (subject, document id, sha256), byte-wise.
    assert refs == sorted(refs, key=lambda r: (r.subject.encode(), r.document_id.encode(), r.document_sha256))
    ghsa = [r for r in refs if r.document_id == "GHSA-mp6f-p9gp-vpj9"]
    # Two revisions were imported; the newer one (modified 2024) is the only one exported.
    assert [r.document_sha256 for r in ghsa] == [_sha("advisories/ghsa-upstream/GHSA-mp6f-p9gp-vpj9.json")]
    first = refs[0]
    assert first.size == len((SAMPLES / "vex/cyclonedx-vex-not_affected.json").read_bytes())
    assert first.format == "cyclonedx-vex"


def test_order_does_not_depend_on_import_order(tmp_path: Path) -> None:
    files = sorted(p for p in SAMPLES.rglob("*.json"))
    results = []
    for name, order in (("forward", files), ("backward", list(reversed(files)))):
        with Store.open(Home(tmp_path / name)) as s:
            for path in order:  # one import per file, so rows land in the opposite order
                Importer(s, SOURCES, tenant="acme").run([path])
            results.append(list(resolve_inputs(s, "acme", Selectors(), ALL)))
    assert results[0] == results[1]
    assert len(results[0]) > 10


def test_only_the_runs_tenant_is_ever_selected(store: Store, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(SAMPLES / "advisories/GO-2020-0001.json", other / "a.json")
    Importer(store, SOURCES, tenant="globex").run([other])
    assert _ids(list(resolve_inputs(store, "globex", Selectors(), RAW))) == ["GO-2020-0001"]
    assert len(_resolve(store, [])) == 11
    # Naming your own tenant is allowed; naming another one is refused by policy (exit 7).
    assert len(_resolve(store, ["tenant=acme"])) == 11
    with pytest.raises(PolicyRefusal) as err:
        resolve_inputs(store, "acme", parse_selectors(["tenant=globex"]), RAW)  # refused at the call
    assert err.value.exit_code == ExitCode.POLICY
    assert "cross-tenant" in err.value.message


def test_time_windows(store: Store) -> None:
    since_2024 = _resolve(store, ["modified_since=2024-01-01"])
    assert sorted(_ids(since_2024)) == sorted(
        [
            "CVE-2021-44228",
            "GO-2020-0001",
            "GHSA-mp6f-p9gp-vpj9",
            "RHSA-2024:4546",
            "aquasecurity/trivy:613fd55abbc2857b5ca28b07a26f3cd4c8b0ddc4c8a97c57497a2d4c4880d7fc",
        ]
    )
    # GO-2020-0001 was modified 2024-05-20T16:03:47Z: a bare date as the end means the whole day, and a
    # time as the end is inclusive.
    go = ["include_id=GO-2020-0001"]
    assert _ids(_resolve(store, [*go, "modified_until=2024-05-20"])) == ["GO-2020-0001"]
    assert _ids(_resolve(store, [*go, "modified_until=2024-05-19"])) == []
    assert _ids(_resolve(store, [*go, "modified_until=2024-05-20T16:03:47Z"])) == ["GO-2020-0001"]
    assert _ids(_resolve(store, [*go, "modified_until=2024-05-20T16:03:46Z"])) == []
    assert _ids(_resolve(store, [*go, "modified_since=2024-05-20T18:03:47+02:00"])) == ["GO-2020-0001"]
    assert _ids(_resolve(store, [*go, "published_since=2021-04-15"])) == []
    # SBOMs are dated by their creation time; the CycloneDX sample has none and so is not in any window.
    sboms = _resolve(store, ["published_until=2011-01-01"], ("sbom",))
    assert [r.format for r in sboms] == ["spdx"]
    # Attestations carry no date: a window does not restrict them.
    atts = _resolve(store, ["modified_since=2030-01-01"], ("attestation",))
    assert len(atts) == 3


def test_package_selectors(store: Store) -> None:
    assert _ids(_resolve(store, ["ecosystem=pypi"])) == ["PYSEC-2023-74"]
    assert _ids(_resolve(store, ["ecosystem=crates.io", "ecosystem=Go"])) == ["GO-2020-0001", "GHSA-mp6f-p9gp-vpj9"]
    # ecosystem also matches a purl type: the OpenVEX statements are about pkg:golang/...
    assert [r.format for r in _resolve(store, ["ecosystem=golang"])] == ["openvex"]
    # purl is a prefix on whole components: .../aquasecurity matches .../aquasecurity/trivy, .../aqua does not.
    assert [r.format for r in _resolve(store, ["purl=pkg:golang/github.com/aquasecurity"])] == ["openvex"]
    assert _resolve(store, ["purl=pkg:golang/github.com/aqua"]) == []
    assert _ids(_resolve(store, ["purl=pkg:rpm/redhat/git-lfs"])) == ["RHSA-2024:4546"]
    assert _ids(_resolve(store, ["purl=pkg:PyPI/Requests"])) == ["PYSEC-2023-74"]


def test_product_subject_format_and_id_selectors(store: Store) -> None:
    assert [r.format for r in _resolve(store, ["product=PRODUCT-abc"], ("vex",))] == ["cyclonedx-vex"]
    assert [r.subject for r in _resolve(store, ["sbom_subject=glibc@2.11.1"], ("sbom",))] == ["glibc@2.11.1"]
    # A selector leaves the record types it does not describe alone: advisories pass sbom_subject.
    mixed = _resolve(store, ["sbom_subject=glibc"])
    assert sorted({r.kind for r in mixed}) == ["advisory", "sbom", "vex"]
    assert [r.format for r in mixed if r.kind == "sbom"] == ["spdx"]
    assert {r.format for r in _resolve(store, ["format=osv"])} == {"osv"}
    cve = _resolve(store, ["include_id=cve-2021-44228"])
    assert _ids(cve) == ["CVE-2021-44228"]
    by_digest = _resolve(store, [f"include_id={cve[0].document_sha256.upper()}"])
    assert by_digest == cve
    without = _resolve(store, ["format=osv", "exclude_id=GHSA-mp6f-p9gp-vpj9"])
    assert "GHSA-mp6f-p9gp-vpj9" not in _ids(without) and len(without) == 3


def test_inputs_stream_while_the_caller_reads_the_store(store: Store) -> None:
    total = 0
    for ref in resolve_inputs(store, "acme", Selectors(), ALL):
        data = store.raw_bytes("acme", ref.document_sha256)  # another query mid-iteration
        assert hashlib.sha256(data).hexdigest() == ref.document_sha256
        assert len(data) == ref.size
        total += 1
    assert total == 18
