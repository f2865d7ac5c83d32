"""STIX 2.1: mapping of shared indicators to STIX objects and back, patterns, bundles, feeds."""
