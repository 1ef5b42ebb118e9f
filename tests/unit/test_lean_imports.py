"""core.lean_imports: importing TUF through the CLI leaves boto3 unloaded, and boto3 still imports afterwards (the
S3 distribution needs it), as the first import of a process and when it was loaded before TUF."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT

CHECK = """
import sys
from core import lean_imports
lean_imports.install()
{before}
import tuf.api.metadata
from securesystemslib.signer import _aws_signer
print("boto3" in sys.modules, "botocore" in sys.modules, _aws_signer.AWS_IMPORT_ERROR is not None)
import boto3
print(boto3.session.Session is not None)
"""


def _run(before: str) -> list[str]:
    code = CHECK.format(before=before)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    return done.stdout.split()


def test_tuf_loads_without_boto3_which_still_imports_later() -> None:
    assert _run("") == ["False", "False", "True", "True"]


def test_a_boto3_loaded_before_is_left_alone() -> None:
    assert _run("import boto3") == ["True", "True", "False", "True"]


def test_the_cli_installs_it() -> None:
    code = (
        "import sys, contextlib\nfrom app.cli import main\nwith contextlib.suppress(SystemExit):\n"
        "    main(['tuf', '--help'])\nimport tuf.api.metadata\nprint('botocore' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"
