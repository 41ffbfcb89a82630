"""End-to-end workflows built from the other parts (used by the command line)."""
