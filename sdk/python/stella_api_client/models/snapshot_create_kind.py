from enum import StrEnum


class SnapshotCreateKind(StrEnum):
    JOB = "job"
    POLICY = "policy"
    RUN = "run"

    def __str__(self) -> str:
        return str(self.value)
