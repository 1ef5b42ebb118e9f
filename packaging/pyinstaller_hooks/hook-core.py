# core reads its store migrations (*.sql) and the files every bundle carries (README.txt, verify.sh) with
# importlib.resources: collect them as data.
from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("core", includes=["store/migrations/*.sql", "bundle_files/*.txt", "bundle_files/*.sh"])
