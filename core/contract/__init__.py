"""Wire facts, defined once: file names, paths, media types and payload types of every bundle kind.

Writers (``core.bundle``, ``adapters.profiles``) and verifiers (``verify``) import these constants; a test
(``tests/unit/test_contract.py``) checks that no string constant of the contract is spelled anywhere else in the
product, and another (``tests/integration/test_contract.py``) that every profile's output passes its verifier.

- :mod:`core.contract.bundle`: the head files every bundle starts with, their archive order, the trust prefix.
- :mod:`core.contract.media_types`: media types the manifest gives files (DSSE, Sigstore, age, OCI, Trivy).
- :mod:`core.contract.payload_types`: DSSE payload types (in-toto, the risk and devportal manifests).
- :mod:`core.contract.attestation`, :mod:`~core.contract.risk`, :mod:`~core.contract.devportal`,
  :mod:`~core.contract.mirror`, :mod:`~core.contract.trivy`: each profile's paths.
- :mod:`core.contract.json_raw`: where `json:raw` and `json:policy` pack their raw documents.
- :mod:`core.contract.manifest`: the verified ``export.json``, parsed once into a typed, immutable value.
"""
