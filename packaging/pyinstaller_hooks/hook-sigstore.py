# sigstore-python's embedded trust roots (sigstore/_store/<TUF URL>/trusted_root.json, read with importlib.resources:
# the production root `stella attest` verifies keyless bundles with) are data files import analysis cannot see.
from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("sigstore", includes=["_store/**/*.json"])
