"""irfa_nwb.cli (see DESIGN.md)."""
