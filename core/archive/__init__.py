"""Bundle archives: the deterministic writer (:mod:`core.archive.writer`) and the fail-closed streaming reader
(:mod:`core.archive.reader`), which apply the same rules to member names (:mod:`core.archive.rules`)."""
