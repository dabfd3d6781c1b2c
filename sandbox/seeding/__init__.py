"""What the bootstrap image ships, with sandbox.core: sandbox.yaml and the seeding it describes."""
