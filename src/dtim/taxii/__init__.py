"""TAXII 2.1: the server (collections over the store, through privacy), the client, and exports."""
