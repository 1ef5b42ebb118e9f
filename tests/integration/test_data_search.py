"""`stella data list KIND --search TEXT`: a word finds records across the whole tenant, by id, alias or title,
ignoring case, a page at a time; what a user types is text, never a pattern."""

from __future__ import annotations

from typing import Any

from tests.conftest import ROOT

SAMPLES = ROOT / "samples"


def test_search_finds_records_by_id_alias_and_title_in_one_tenant(stella: Any) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories", SAMPLES / "risk").code == 0
    assert stella("import", "--quiet", "--tenant", "other", SAMPLES / "advisories").code == 0

    # A product name, in upper case, across a catalog of over a thousand entries.
    kev = stella("data", "list", "kev", "--search", "LOG4J")
    assert kev.code == 0, kev.err
    assert "kev (2 of 2 matching 'LOG4J')" in kev.out
    assert "CVE-2021-44228" in kev.out and "CVE-2021-45046" in kev.out

    # An alias (GO-2020-0001 is also CVE-2020-36567) and a word of a title find their advisory.
    for text in ("cve-2020-36567", "Log Line Injection"):
        page = stella("data", "list", "advisories", "--search", text, "--json").json()
        assert [i["advisory_id"] for i in page["items"]] == ["GO-2020-0001"], text
        assert page["total"] == 1 and page["search"] == text

    # Pages of the matches: the total stays the number of matches.
    everything = stella("data", "list", "kev", "--json", "--limit", "1").json()["total"]
    first = stella("data", "list", "kev", "--search", "microsoft", "--json", "--limit", "2").json()
    second = stella("data", "list", "kev", "--search", "microsoft", "--json", "--limit", "2", "--offset", "2").json()
    assert 2 < first["total"] == second["total"] < everything
    listed = first["items"] + second["items"]
    assert len({i["cve_id"] for i in listed}) == 4 and all(i["vendor_project"] == "Microsoft" for i in listed)

    # The other tenant has the advisories but no KEV catalog.
    assert stella("data", "list", "kev", "--tenant", "other", "--search", "log4j", "--json").json()["total"] == 0
    other = stella("data", "list", "advisories", "--tenant", "other", "--search", "gin-gonic", "--json").json()
    assert [i["advisory_id"] for i in other["items"]] == ["GO-2020-0001"]


def test_search_text_is_literal_and_a_miss_says_so(stella: Any) -> None:
    assert stella("import", "--quiet", SAMPLES / "advisories").code == 0
    for text in ("%", "GO-2020-000_", "GO%", "[bold]x"):  # as LIKE patterns, the middle two would match
        miss = stella("data", "list", "advisories", "--search", text)
        assert miss.code == 0, miss.err
        assert miss.out.strip() == f"no advisories matching {text!r} in tenant default"
    # Blank text searches nothing: every row is listed, and --json names no search.
    blank = stella("data", "list", "advisories", "--search", "  ", "--json").json()
    total = stella("data", "list", "advisories", "--json").json()["total"]
    assert blank["total"] == total > 1 and "search" not in blank
    refused = stella("data", "list", "advisories", "--search", "gin", "--offset", "-1")
    assert refused.code == 2 and "--offset cannot be negative" in refused.err
