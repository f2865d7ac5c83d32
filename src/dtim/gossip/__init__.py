"""Gossip: reports, reconciliation, merge, origin hiding, corroboration and reputation."""
