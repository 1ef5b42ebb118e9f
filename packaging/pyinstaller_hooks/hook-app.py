# The CLI imports each command module by name (app.cli.COMMANDS), the TUI each screen when it is first shown
# (app.tui.app.StellaApp.MODES), and the TUI loads its stylesheet from a .tcss file next to app/tui/app.py: none of
# these is visible to PyInstaller's import analysis.
from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules("app")
datas = collect_data_files("app", includes=["**/*.tcss"])
