"""Activations: outbound messages, providers, the exactly-once ledger, the local sink and uplift."""
