"""irfa_nwb.analysis (see DESIGN.md)."""
