"""Landing files into the warehouse and reading/writing its tables."""
