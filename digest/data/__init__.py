"""Data that ships inside the package: the ranker weights and their data card."""
