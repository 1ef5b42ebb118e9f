"""Wire facts, defined once: file names, paths, media types and payload types of every bundle kind.

Writers (``core.bundle``, ``adapters.profiles``) and verifiers (``verify``) import these constants; a test checks that
no string constant of the contract is spelled anywhere else in the tree.
"""
