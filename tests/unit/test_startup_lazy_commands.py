"""What a command's parser and the profile registry load: `stella verify --help` builds the verify command's parser
without the verifier, the services or cryptography, and the profile registry imports an adapter's module only when
its profile is asked for (mirror's TUF libraries, which bring boto3, stay out of every other run)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.conftest import ROOT
from tests.unit.test_startup_imports import API, UI_AND_STORE, loaded_by


def test_verify_help_loads_the_parser_and_not_the_verifier(tmp_path: Any) -> None:
    loaded = loaded_by(tmp_path, "verify", "--help")
    assert loaded["code"] == 0
    assert not (UI_AND_STORE | API | {"cryptography", "zstandard"}) & set(loaded["third_party"]), loaded
    heavy = [m for m in loaded["project"] if m.startswith(("services", "verify", "adapters", "core.archive"))]
    assert heavy == [], f"stella verify --help loaded {heavy}"
    assert "app.commands.verify" in loaded["project"]  # the command's own parser was built


def test_export_help_loads_no_tuf(tmp_path: Any) -> None:
    """`stella export --help` builds its parser without the export services: no store, no adapters, no TUF (nor
    boto3 through it), no DuckDB or pyarrow; the handlers import them when they run."""
    loaded = loaded_by(tmp_path, "export", "--help")
    assert loaded["code"] == 0
    heavy = {"tuf", "boto3", "botocore", "securesystemslib", "duckdb", "pyarrow"}
    assert not heavy & set(loaded["third_party"]), loaded["third_party"]
    assert not {"core.tuf_home", "services.export", "services.keys", "core.ingest"} & set(loaded["project"])


def _probe(code: str) -> Any:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout)


def test_listing_the_profiles_imports_no_adapter() -> None:
    probe = """
import json, sys
from adapters.profiles.registry import PROFILES
names = sorted(PROFILES)
loaded = sorted(m for m in sys.modules if m.startswith(("adapters.profiles.", "tuf", "boto3")))
print(json.dumps({"names": names, "loaded": loaded}))
"""
    found = _probe(probe)
    assert "json:raw" in found["names"] and "mirror:full" in found["names"]
    assert found["loaded"] == ["adapters.profiles.registry"]


def test_each_profile_is_its_modules_adapter_and_only_that_module_loads() -> None:
    probe = """
import importlib, json, sys
from adapters.profiles.registry import PROFILES, _ADAPTERS
json_raw = PROFILES["json:raw"]
loaded = sorted(m for m in sys.modules if m.startswith(("adapters.profiles.", "tuf")))
same = {pid: PROFILES[pid] is getattr(importlib.import_module(f"adapters.profiles.{mod}"), name)
        for pid, (mod, name) in _ADAPTERS.items()}
print(json.dumps({"loaded_for_json_raw": loaded, "same": same, "count": len(PROFILES)}))
"""
    found = _probe(probe)
    assert "adapters.profiles.json_raw" in found["loaded_for_json_raw"]
    assert not [m for m in found["loaded_for_json_raw"] if m.startswith(("adapters.profiles.mirror", "tuf"))]
    assert all(found["same"].values()) and len(found["same"]) == found["count"] == 11
