"""Run one fuzz harness under atheris (libFuzzer): ``python -m tests.fuzz.fuzz_main TARGET [libFuzzer args]``.

The project's packages are instrumented for coverage as the harness imports them; libFuzzer's options
(``-max_total_time``, ``-timeout``, ``-rss_limit_mb``, ``-artifact_prefix``, corpus directories) pass through.
``scripts/fuzz.sh`` runs every target this way.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["core", "verify", "adapters"]):
    from tests.fuzz import harnesses

    # Import what each harness imports lazily now, so it is instrumented, and build the fixtures once.
    for _name, _target in harnesses.TARGETS.items():
        harnesses.run_one(_name, b"")


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in harnesses.TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.fuzz_main {{{','.join(harnesses.TARGETS)}}} [libFuzzer args]")
    target = sys.argv.pop(1)

    def one_input(data: bytes) -> None:
        harnesses.run_one(target, data)

    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
