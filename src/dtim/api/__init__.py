"""HTTP APIs of the node: peer API, admin API, middleware and error mapping."""
