"""Developer tools built on the core (not used by the node): e.g. ``query_thresholds``."""
