# textual.widgets imports its widgets lazily (Textualize/textual#4912): collect every submodule, and the
# package metadata textual reads for its version. Textual's own stylesheets live in Python strings.
from PyInstaller.utils.hooks import collect_submodules, copy_metadata

hiddenimports = collect_submodules("textual.widgets") + collect_submodules("textual.css")
datas = copy_metadata("textual")
