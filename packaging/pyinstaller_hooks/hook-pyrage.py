# pyrage is one native extension whose submodules (x25519, passphrase, ssh) are created at import time; the
# Python shim re-exports them. Collect the whole package so the extension and its shim both ship.
from PyInstaller.utils.hooks import collect_all

datas, binaries, hiddenimports = collect_all("pyrage")
