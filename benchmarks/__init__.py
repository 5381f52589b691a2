"""wakecall's benchmark suite: scripts that print figures (not tests). See README.md here."""
