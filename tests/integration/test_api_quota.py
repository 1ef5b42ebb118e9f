"""The byte quota over the API: the bytes of a tenant's bundles still on disk, against STELLA_MAX_TENANT_BYTES.

A served instance (the Server helper), two tenants with the samples imported and a signing key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.integration.test_api import SAMPLES, Server, assert_problem, cli, mint, start_run, wait_done

BYTES = ("x-stella-quota-bytes-limit", "x-stella-quota-bytes-used", "x-stella-quota-bytes-remaining")


def quota_bytes(response: httpx.Response) -> tuple[int, int, int]:
    limit, used, remaining = (int(response.headers[name]) for name in BYTES)
    return limit, used, remaining


def test_a_tenant_over_its_bytes_on_disk_gets_429_until_its_bundles_are_gone(tmp_path: Path) -> None:
    home = tmp_path / "home"
    samples = [str(p) for p in sorted(SAMPLES.iterdir()) if p.is_dir()]
    for tenant in ("acme", "globex"):
        assert cli(home, "import", "--quiet", "--tenant", tenant, *samples).returncode == 0
    assert cli(home, "keys", "generate", "k").returncode == 0
    server = Server(home, {"STELLA_MAX_TENANT_BYTES": "1000"})
    try:
        api: dict[str, Any] = {
            "url": server.url,
            "tokens": {t: mint(home, t, "export:run", "export:read", "export:download") for t in ("acme", "globex")},
        }
        first = start_run(api)
        assert first.status_code == 202, first.text
        assert quota_bytes(first) == (1000, 0, 1000)  # nothing on disk yet: admitted
        view = wait_done(api, first.json()["id"])
        assert view["status"] == "succeeded", view
        bundle = httpx.get(
            f"{api['url']}/api/v1/export/runs/{view['id']}/download",
            headers={"Authorization": f"Bearer {api['tokens']['acme']}"},
            timeout=60,
        )
        assert bundle.status_code == 200
        size = len(bundle.content)
        assert size > 1000  # the samples' bundle alone is over this limit

        refused = start_run(api)
        problem = assert_problem(refused, 429, "quota-exceeded")
        assert problem["exitCode"] == 7
        assert f"{size} bytes" in problem["detail"] and "STELLA_MAX_TENANT_BYTES" in problem["detail"]
        assert quota_bytes(refused) == (1000, size, 0)
        assert refused.headers["x-stella-quota-active-runs-used"] == "0"  # it is the bytes, not the runs

        other = start_run(api, tenant="globex")  # another tenant's bytes are its own
        assert other.status_code == 202, other.text
        assert quota_bytes(other) == (1000, 0, 1000)
        assert wait_done(api, other.json()["id"], tenant="globex")["status"] == "succeeded"

        removed = 0
        for path in (home / "exports").iterdir():
            if path.is_file() and path.read_bytes() == bundle.content:
                path.unlink()  # as `stella retention prune` or an operator would
                removed += 1
        assert removed >= 1

        again = start_run(api)  # the bundle is gone from disk: room again
        assert again.status_code == 202, again.text
        assert quota_bytes(again) == (1000, 0, 1000)
        assert wait_done(api, again.json()["id"])["status"] == "succeeded"
    finally:
        server.stop()
