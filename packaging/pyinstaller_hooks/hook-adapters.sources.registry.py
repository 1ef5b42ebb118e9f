# Every source adapter module is imported by the registry; collect the vendored JSON Schemas they load.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules("adapters.sources")
datas = collect_data_files("adapters.sources.schemas")
