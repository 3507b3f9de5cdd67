"""LUXA as the pipeline host of Wyoming satellites: one room per satellite (docs/SATELLITES.md)."""
