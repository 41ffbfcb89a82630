"""irfa_nwb.data (see DESIGN.md)."""
