"""irfa_nwb.results (see DESIGN.md)."""
