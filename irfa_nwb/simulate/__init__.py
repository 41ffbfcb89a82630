"""irfa_nwb.simulate (see DESIGN.md)."""
