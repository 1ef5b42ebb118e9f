# The devportal profile ships helper scripts read with importlib.resources; every profile adapter is imported by
# the registry, but collect them all so a new one never goes missing from the binary.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules("adapters")
datas = collect_data_files("adapters", includes=["devportal_files/*.sh", "sources/schemas/**/*"])
