"""``json:policy``: everything ``json:raw`` ships, plus the policy snapshots and evaluated findings.

Extra payload::

    data/policy/snapshots.jsonl.zst    policy_version, inputs_hash, decision-trace fingerprint per snapshot
    data/policy/findings.jsonl.zst     evaluated findings, each naming its policy version
"""

from __future__ import annotations

from adapters.profiles._records import redact, stream
from adapters.profiles.json_raw import JsonRaw
from core.bundle import PayloadContext

SNAPSHOTS = """
SELECT i.tenant, p.document_sha256 AS "documentSha256", p.policy_id AS "policyId",
       p.policy_version AS "policyVersion", p.inputs_hash AS "inputsHash",
       p.decision_trace_fingerprint AS "decisionTraceFingerprint", p.evaluated_at AS "evaluatedAt",
       p.findings_count AS "findingsCount"
  FROM export_inputs i
  JOIN policy_snapshots p ON p.tenant = i.tenant AND p.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind = 'policy' AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal
"""

FINDINGS = """
SELECT i.tenant, f.document_sha256 AS "documentSha256", f.policy_id AS "policyId",
       f.policy_version AS "policyVersion", f.finding_id AS "findingId", f.vulnerability_id AS "vulnerabilityId",
       f.subject, f.purl, f.severity, f.decision, f.reason
  FROM export_inputs i
  JOIN findings f ON f.tenant = i.tenant AND f.document_sha256 = i.document_sha256
 WHERE i.run_id = ? AND i.tenant = ? AND i.kind IN ('policy', 'findings') AND i.ordinal >= ? AND i.ordinal < ?
 ORDER BY i.ordinal, f.finding_id
"""


class JsonPolicy(JsonRaw):
    """The ``json:policy`` profile."""

    variant = "policy"

    def write_payload(self, ctx: PayloadContext) -> dict[str, int]:
        counts = super().write_payload(ctx)
        allowlist = ctx.spec.profile_config.get("redactionAllowlist")
        params = [ctx.spec.run_id, ctx.spec.tenant]
        level = ctx.spec.compression_level
        for name, path, sql in (
            ("policySnapshots", "data/policy/snapshots.jsonl.zst", SNAPSHOTS),
            ("findings", "data/policy/findings.jsonl.zst", FINDINGS),
        ):
            n = 0
            with ctx.writer.jsonl_zst(path, level) as write:
                for record in stream(ctx.query, sql, params):
                    write(redact(record, allowlist))
                    n += 1
            counts[name] = n
        return counts


PROFILE = JsonPolicy()
