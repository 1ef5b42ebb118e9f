# python-tuf's API modules, imported by name in places (tuf.api.serialization.json, the ngclient).
from PyInstaller.utils.hooks import collect_submodules

hiddenimports = collect_submodules("tuf")
