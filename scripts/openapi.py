"""The committed API contract and SDK, regenerated from the app: `python scripts/openapi.py spec|sdk|check`.

- ``spec`` writes ``docs/openapi.json``: the document the server serves at ``/.well-known/openapi`` (an app built on an
  empty temporary home), as indented JSON. ``tests/contract/test_openapi_contract.py`` fails when they differ.
- ``sdk`` regenerates the Python SDK in ``sdk/python/`` from ``docs/openapi.json`` with openapi-python-client (the
  test extra pins it), keeping the hand-written ``stella_api_client/download.py`` and ``verify_stream.py``.
- ``check`` exits 1 if ``docs/openapi.json`` is not what ``spec`` would write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "openapi.json"
SDK = ROOT / "sdk" / "python"
SDK_CONFIG = ROOT / "sdk" / "openapi-python-client.yaml"
PACKAGE = "stella_api_client"
#: Hand-written files inside the generated package, kept across regeneration.
HAND_WRITTEN = ("download.py", "verify_stream.py")
#: Operations that stream by default and answer one JSON document to ``Accept: application/json``: the generated
#: module parses one document, so it asks for it (its streamed form is ``stella_api_client.verify_stream``).
ONE_DOCUMENT = ("api/verify/verify_bundle.py",)
#: Where the server serves its OpenAPI document.
SPEC_PATH = "/.well-known/openapi"


def served_spec() -> dict[str, Any]:
    """The OpenAPI document the app serves, built on a fresh empty home."""
    from fastapi.testclient import TestClient

    from app.api.server import create_app
    from core.home import Home

    with tempfile.TemporaryDirectory() as tmp:
        client = TestClient(create_app(Home(Path(tmp) / "home")))
        response = client.get(SPEC_PATH)
        response.raise_for_status()
        spec: dict[str, Any] = response.json()
        return spec


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def write_spec() -> None:
    SPEC.write_text(render(served_spec()), encoding="utf-8")
    print(f"wrote {SPEC.relative_to(ROOT)}")


def write_sdk() -> None:
    kept = {name: (SDK / PACKAGE / name).read_bytes() for name in HAND_WRITTEN if (SDK / PACKAGE / name).exists()}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "python"
        generator = Path(sys.executable).parent / "openapi-python-client"
        subprocess.run(
            [
                str(generator),
                "generate",
                "--path",
                str(SPEC),
                "--config",
                str(SDK_CONFIG),
                "--output-path",
                str(out),
                "--meta",
                "pdm",
            ],
            check=True,
            env={**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        )
        shutil.rmtree(out / ".ruff_cache", ignore_errors=True)  # the generator's formatting pass leaves it
        _import_unset(out)
        _accept_json(out)
        if SDK.exists():
            shutil.rmtree(SDK)
        shutil.copytree(out, SDK)
    for name, data in kept.items():
        (SDK / PACKAGE / name).write_bytes(data)
    print(f"wrote {SDK.relative_to(ROOT)}")


def _import_unset(out: Path) -> None:
    """The generator types a body of several media types ``X | File | Unset`` but imports only ``UNSET``: add it."""
    for module in out.rglob("*.py"):
        text = module.read_text(encoding="utf-8")
        if "| Unset" in text and "from ...types import UNSET, File, Response\n" in text:
            fixed = text.replace(
                "from ...types import UNSET, File, Response\n", "from ...types import UNSET, File, Response, Unset\n"
            )
            module.write_text(fixed, encoding="utf-8")


def _accept_json(out: Path) -> None:
    """The generated modules of :data:`ONE_DOCUMENT` send ``Accept: application/json`` (the typed document)."""
    for name in ONE_DOCUMENT:
        module = out / PACKAGE / name
        text = module.read_text(encoding="utf-8")
        generated = "    headers: dict[str, Any] = {}\n"
        if text.count(generated) != 1:
            raise SystemExit(f"{name}: the generator's headers line changed; update scripts/openapi.py")
        module.write_text(
            text.replace(generated, '    headers: dict[str, Any] = {"Accept": "application/json"}\n'), encoding="utf-8"
        )


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    action = argv[0] if argv else ""
    if action == "spec":
        write_spec()
    elif action == "sdk":
        write_sdk()
    elif action == "check":
        if SPEC.read_text(encoding="utf-8") != render(served_spec()):
            print(f"{SPEC.relative_to(ROOT)} differs from the served spec: run `python scripts/openapi.py spec`")
            return 1
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
