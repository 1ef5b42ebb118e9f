"""Replay every file of the fuzz corpus through its harness as a plain call (no atheris): each input is either
accepted or refused with a StellaError, so what fuzzing found once stays fixed. The ``finding-*`` files are the
reproducers of past findings (tests/fuzz/corpus/README.md). ``tests/fuzz/open/<target>/`` holds reproducers of
findings in code another change is still working on: they are expected to fail, strictly, so the test says so
the moment one is fixed (then move the file into the corpus as ``finding-*``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harnesses import CORPUS, TARGETS, run_one

OPEN = Path(__file__).parent / "open"


def _files(root: Path) -> list[tuple[str, Path]]:
    return sorted(
        (target, path) for target in TARGETS if (root / target).is_dir() for path in (root / target).iterdir()
    )


CASES = _files(CORPUS)
OPEN_CASES = _files(OPEN)

#: A clean seed per target that its harness accepts, so a harness that refuses everything cannot hide. (The dsse
#: harness reads each input both as a DSSE envelope and as a Sigstore bundle, so one of the two always refuses.)
CLEAN = {
    "archive": "json-raw.tar.zst",
    "manifest": "json-raw.export.json",
    "checksums": "json-raw.checksums.txt",
    "sources": "dsse_cosign-attestation.json",
    "inputs": "osv-epss.tar.zst",
    "tuf": "1-timestamp.json",
    "sigstore": "sigstore-go-scaffolding.trusted_root.json",
    "evidence": "2-proofs.json",  # a fixture refresh (new signature, new test TSA) keeps the proofs
}


def _accepted_or_refused(target: str, path: Path) -> None:
    error = run_one(target, path.read_bytes())
    if error is not None:
        assert int(error.exit_code) in (2, 3, 4, 5, 6, 7, 8), error


def test_every_target_has_a_corpus() -> None:
    assert sorted(p.name for p in CORPUS.iterdir() if p.is_dir()) == sorted(TARGETS)
    for target in TARGETS:
        assert any(case[0] == target for case in CASES), f"no seed for {target}"


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_corpus_input_is_accepted_or_refused_with_an_exit_code(target: str, path: Path) -> None:
    _accepted_or_refused(target, path)


def test_each_open_finding_still_fails() -> None:
    """Every reproducer under ``open/`` still fails; once one passes, it is fixed: move it into the corpus."""
    fixed = []
    for target, path in OPEN_CASES:
        try:
            _accepted_or_refused(target, path)
        except Exception:  # still open, as expected
            continue
        fixed.append(f"{target}/{path.name}")
    assert not fixed, f"fixed (move them into tests/fuzz/corpus as finding-*): {fixed}"


@pytest.mark.parametrize("target", sorted(CLEAN))
def test_a_clean_seed_is_accepted(target: str) -> None:
    assert run_one(target, (CORPUS / target / CLEAN[target]).read_bytes()) is None
