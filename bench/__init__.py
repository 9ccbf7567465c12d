"""Benchmarks: the archiver against the hardware's ceilings and a peer, measured in one run."""
