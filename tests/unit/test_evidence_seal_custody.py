"""The chain of custody (core/custody.py): events chain by hash; a removed, reordered, inserted or altered event is
named by verification."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import datetime

import pytest

from core.canonical import canonical_json
from core.custody import GENESIS, CustodyEvent, append_event, verify_chain
from core.errors import BadInputError, IntegrityError

DIGEST = "sha256:" + "ab" * 32


def _chain(n: int) -> list[CustodyEvent]:
    chain: list[CustodyEvent] = []
    actions = ["snapshot", "seal", "access", "hold", "export", "verify", "transfer", "release"]
    for i in range(n):
        chain.append(
            append_event(
                chain,
                at=datetime(2026, 12, 7, 10, 0, i),
                actor=f"user{i % 3}",
                action=actions[i % len(actions)],
                subject="evidence:ev-1",
                subject_digest=DIGEST,
                where="workstation-7",
                why=f"step {i}",
            )
        )
    return chain


def test_events_chain_from_genesis_and_the_head_is_the_last_hash() -> None:
    chain = _chain(6)
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5, 6]
    assert chain[0].prev == GENESIS
    assert all(b.prev == a.hash for a, b in itertools.pairwise(chain))
    assert verify_chain(chain) == chain[-1].hash
    assert chain[0].at == "2026-12-07T10:00:00Z"
    # The hash is over the RFC 8785 form of the event without "hash".
    import hashlib

    body = chain[2].to_dict()
    del body["hash"]
    assert hashlib.sha256(canonical_json(body)).hexdigest() == chain[2].hash
    assert set(chain[2].to_dict()) == {
        "seq", "at", "actor", "action", "subject", "subjectDigest", "where", "why", "prev", "hash",
    }  # fmt: skip


def test_json_round_trip_is_exact() -> None:
    chain = _chain(3)
    assert [CustodyEvent.from_dict(e.to_dict()) for e in chain] == chain


def test_deleting_any_one_event_is_detected_and_named() -> None:
    chain = _chain(5)
    for i in range(4):  # the last one: the head no longer matches, which the sealed manifest checks
        broken = chain[:i] + chain[i + 1 :]
        with pytest.raises(IntegrityError, match=rf"custody event {i + 1} \(seq {i + 2}\) does not follow"):
            verify_chain(broken)
    assert verify_chain(chain[:-1]) != chain[-1].hash


def test_reordering_two_events_is_detected() -> None:
    chain = _chain(5)
    swapped = [chain[0], chain[2], chain[1], chain[3], chain[4]]
    with pytest.raises(IntegrityError, match=r"custody event 2 \(seq 3\) does not follow"):
        verify_chain(swapped)


def test_an_altered_event_no_longer_matches_its_hash() -> None:
    chain = _chain(4)
    altered = [*chain[:2], dataclasses.replace(chain[2], why="nothing to see"), chain[3]]
    with pytest.raises(IntegrityError, match=r"custody event 3 \(seq 3\) was altered"):
        verify_chain(altered)


def test_an_altered_event_with_a_recomputed_hash_breaks_the_next_link() -> None:
    chain = _chain(4)
    forged = dataclasses.replace(chain[1], actor="mallory")
    forged = dataclasses.replace(forged, hash=forged.computed_hash())
    with pytest.raises(IntegrityError, match=r"custody event 3 \(seq 3\) does not follow"):
        verify_chain([chain[0], forged, chain[2], chain[3]])


def test_a_run_of_a_chain_verifies_from_its_anchor_but_not_from_genesis() -> None:
    chain = _chain(6)
    run = chain[2:]
    assert verify_chain(run, anchor=chain[1].hash) == chain[-1].hash
    with pytest.raises(IntegrityError, match="does not follow"):
        verify_chain(run)
    with pytest.raises(IntegrityError, match="does not follow"):
        verify_chain(run[1:], anchor=chain[1].hash)


def test_a_whole_chain_starts_at_seq_1() -> None:
    first = _chain(1)[0]
    renumbered = dataclasses.replace(first, seq=7)
    renumbered = dataclasses.replace(renumbered, hash=renumbered.computed_hash())
    with pytest.raises(IntegrityError, match="first event of a chain has seq 1"):
        verify_chain([renumbered])


def test_malformed_events_are_refused_when_written() -> None:
    with pytest.raises(BadInputError, match="unknown action 'shred'"):
        append_event([], at="2026-12-07T10:00:00Z", actor="a", action="shred", subject="s",
                     subject_digest=DIGEST, where="h", why="")  # fmt: skip
    with pytest.raises(BadInputError, match="not RFC 3339 UTC"):
        append_event([], at="2026-12-07 10:00", actor="a", action="access", subject="s",
                     subject_digest=DIGEST, where="h", why="")  # fmt: skip
    with pytest.raises(BadInputError, match="sha256:<hex>"):
        append_event([], at="2026-12-07T10:00:00Z", actor="a", action="access", subject="s",
                     subject_digest="md5:00", where="h", why="")  # fmt: skip
    with pytest.raises(BadInputError, match="'seq' is missing or not a int"):
        CustodyEvent.from_dict({**_chain(1)[0].to_dict(), "seq": True})
    with pytest.raises(BadInputError, match="unknown fields: extra"):
        CustodyEvent.from_dict({**_chain(1)[0].to_dict(), "extra": 1})
