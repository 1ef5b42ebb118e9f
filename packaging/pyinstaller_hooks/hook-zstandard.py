# zstandard picks its backend at import time (backend_c, else cffi): ship the C backend, which it prefers.
hiddenimports = ["zstandard.backend_c"]
