"""The audit of every message (Tessera and other systems) and its collision report."""
