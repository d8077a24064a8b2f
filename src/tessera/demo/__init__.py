"""The synthetic demo shop (the embedded default data set)."""
