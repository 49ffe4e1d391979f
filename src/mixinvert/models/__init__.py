"""Neural networks: the EAMI inference network and its checkpoints."""
