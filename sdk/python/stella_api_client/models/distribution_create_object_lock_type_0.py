from enum import StrEnum


class DistributionCreateObjectLockType0(StrEnum):
    COMPLIANCE = "compliance"
    GOVERNANCE = "governance"

    def __str__(self) -> str:
        return str(self.value)
