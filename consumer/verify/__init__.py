"""`kafka-parquet-archiver verify`: is the archive consistent with itself and with Kafka?

verify_archive() is the command; verify() is the same check with the Kafka side injected.
Modules: files (one file), segments (a start offset's files, overlaps), coverage (holes, the
committed offset), scan (the first pass), deep/probe/cursor/content (the --deep pass), report.
"""

from consumer.verify.command import DEFAULT_SAMPLE, VerifyOptions, verify, verify_archive

__all__ = ["DEFAULT_SAMPLE", "VerifyOptions", "verify", "verify_archive"]
