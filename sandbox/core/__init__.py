"""Used by every runtime: the host, the bootstrap container and the tests. Nothing here imports sandbox.host."""
