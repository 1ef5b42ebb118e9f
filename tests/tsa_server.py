"""A real RFC 3161 TSA for tests: ``openssl ts -reply`` behind a small HTTP server on 127.0.0.1.

:func:`make_pki` makes, with the openssl command, an ECDSA P-256 test CA and TSA certificates carrying the
critical ``timeStamping`` extended key usage: a good one, one that expired before today, and one signed by an
unrelated CA. :class:`TsaServer` answers ``application/timestamp-query`` POSTs with ``openssl ts -reply`` and a
``ts.cnf`` that embeds only the signer certificate (``rfc3161-client`` cannot parse a reply whose embedded
certificates are not in DER order). Its ``mode`` picks the misbehaviour: ``good``, ``expired`` (signs with the
expired certificate), ``wrong-nonce`` (answers another request for the same digest, with its own nonce) or
``rejected`` (a request for a digest the TSA does not accept, so the reply says rejection).

Use the ``tsa`` fixture: ``from tests.tsa_server import tsa  # noqa: F401`` in a test module.
"""

from __future__ import annotations

import http.server
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool

TS_CNF = """\
[ tsa ]
default_tsa = tsa_config1

[ tsa_config1 ]
dir                    = {dir}
serial                 = $dir/serial
crypto_device          = builtin
signer_cert            = $dir/tsa.crt
signer_key             = $dir/tsa.key
signer_digest          = sha256
default_policy         = 1.3.6.1.4.1.99999.1
other_policies         = 1.3.6.1.4.1.99999.2
digests                = sha256, sha384, sha512
accuracy               = secs:1, millisecs:500, microsecs:100
clock_precision_digits = 0
ordering               = yes
tsa_name               = yes
ess_cert_id_chain      = no
ess_cert_id_alg        = sha256
"""

CA_EXT = """\
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
"""

TSA_EXT = """\
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation
extendedKeyUsage = critical,timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

#: `openssl ca` settings for the expired certificate: only `ca` can set a validity in the past.
CA_CNF = """\
[ ca ]
default_ca = test_ca

[ test_ca ]
dir             = {dir}
database        = $dir/index.txt
new_certs_dir   = $dir/issued
serial          = $dir/ca.serial
default_md      = sha256
policy          = anything
copy_extensions = none
unique_subject  = no

[ anything ]
commonName = supplied

[ tsa_ext ]
{tsa_ext}
"""


def _openssl(*args: str | Path, cwd: Path) -> None:
    subprocess.run(["openssl", *map(str, args)], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    """The files :func:`make_pki` writes, all PEM."""

    dir: Path
    ca_cert: Path
    tsa_cert: Path
    tsa_key: Path
    expired_cert: Path
    other_ca_cert: Path
    cnf: Path


def _ca(folder: Path, name: str, days: int) -> None:
    (folder / f"{name}.ext").write_text(CA_EXT)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", f"{name}.key", cwd=folder)
    _openssl(
        "req", "-new", "-x509", "-key", f"{name}.key", "-subj", f"/CN=stella test {name}", "-days", str(days),
        "-sha256", "-extensions", "v3_ca", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", f"{name}.crt", cwd=folder,
    )  # fmt: skip


def make_pki(folder: Path, *, days: int = 36500) -> Pki:
    """A test CA (valid ``days``), a TSA certificate it signs, an expired TSA certificate for the same key, and an
    unrelated CA with its own TSA certificate; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    _ca(folder, "ca", days)
    _ca(folder, "other-ca", days)
    (folder / "tsa.ext").write_text(TSA_EXT)
    _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "tsa.key", cwd=folder)
    _openssl("req", "-new", "-key", "tsa.key", "-subj", "/CN=stella test TSA", "-out", "tsa.csr", cwd=folder)
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", "2", "-days", str(days),
        "-sha256", "-extfile", "tsa.ext", "-out", "tsa.crt", cwd=folder,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "tsa.csr", "-CA", "other-ca.crt", "-CAkey", "other-ca.key", "-set_serial", "3",
        "-days", str(days), "-sha256", "-extfile", "tsa.ext", "-out", "other-tsa.crt", cwd=folder,
    )  # fmt: skip
    (folder / "issued").mkdir(exist_ok=True)
    (folder / "index.txt").write_text("")
    (folder / "ca.serial").write_text("10\n")
    (folder / "ca.cnf").write_text(CA_CNF.format(dir=folder, tsa_ext=TSA_EXT))
    _openssl(
        "ca", "-batch", "-config", "ca.cnf", "-cert", "ca.crt", "-keyfile", "ca.key", "-in", "tsa.csr",
        "-startdate", "20200101000000Z", "-enddate", "20210101000000Z", "-extensions", "tsa_ext", "-notext",
        "-out", "tsa-expired.crt", cwd=folder,
    )  # fmt: skip
    (folder / "serial").write_text("01\n")
    cnf = folder / "ts.cnf"
    cnf.write_text(TS_CNF.format(dir=folder))
    return Pki(
        dir=folder,
        ca_cert=folder / "ca.crt",
        tsa_cert=folder / "tsa.crt",
        tsa_key=folder / "tsa.key",
        expired_cert=folder / "tsa-expired.crt",
        other_ca_cert=folder / "other-ca.crt",
        cnf=cnf,
    )


def imprint_of(query: bytes) -> tuple[str, bytes]:
    """The hash name and hashed message of a DER ``TimeStampReq`` (test helper, SHA-2 only)."""
    for name, oid, size in (
        ("sha256", bytes.fromhex("608648016503040201"), 32),
        ("sha384", bytes.fromhex("608648016503040202"), 48),
        ("sha512", bytes.fromhex("608648016503040203"), 64),
    ):
        at = query.find(oid)
        if at >= 0:
            start = query.index(bytes([0x04, size]), at) + 2
            return name, query[start : start + size]
    raise ValueError("not a SHA-2 TimeStampReq")


class TsaServer:
    """``openssl ts -reply`` served over HTTP on 127.0.0.1 (an ephemeral port) until :meth:`close`."""

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.mode = "good"
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.requests += 1
                try:
                    reply = server.reply(body)
                except (subprocess.CalledProcessError, ValueError) as exc:
                    self.send_error(500, str(exc))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/tsa"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def reply(self, query: bytes) -> bytes:
        """What the TSA answers ``query`` with, in the current mode."""
        with tempfile.TemporaryDirectory(prefix="tsa-") as work:
            folder = Path(work)
            (folder / "req.tsq").write_bytes(query)
            if self.mode in ("wrong-nonce", "rejected"):
                name, digest = imprint_of(query)
                hash_name = "md5" if self.mode == "rejected" else name
                digest_hex = "00" * 16 if self.mode == "rejected" else digest.hex()
                _openssl("ts", "-query", "-digest", digest_hex, f"-{hash_name}", "-cert", "-out", "req.tsq", cwd=folder)
            args: list[str | Path] = ["ts", "-reply", "-config", self.pki.cnf, "-queryfile", "req.tsq"]
            if self.mode == "expired":
                args += ["-signer", self.pki.expired_cert, "-inkey", self.pki.tsa_key]
            _openssl(*args, "-out", "resp.tsr", cwd=folder)
            return (folder / "resp.tsr").read_bytes()

    def stamp(self, data: bytes) -> bytes:
        """A reply for ``data`` made with the openssl client (``openssl ts -query -data``), not stella's."""
        with tempfile.TemporaryDirectory(prefix="tsa-") as work:
            folder = Path(work)
            (folder / "data.bin").write_bytes(data)
            _openssl("ts", "-query", "-data", "data.bin", "-sha256", "-cert", "-out", "req.tsq", cwd=folder)
            return self.reply((folder / "req.tsq").read_bytes())

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="module")
def tsa_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """The test CA and TSA certificates (made once per module)."""
    require_tool("openssl")
    return make_pki(tmp_path_factory.mktemp("tsa-pki"))


@pytest.fixture
def tsa(tsa_pki: Pki) -> Iterator[TsaServer]:
    """A running test TSA in ``good`` mode."""
    server = TsaServer(tsa_pki)
    try:
        yield server
    finally:
        server.close()
