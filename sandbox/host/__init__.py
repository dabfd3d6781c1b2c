"""Runs only on the developer's machine or CI: settings, Docker, images, the compose stack, cluster providers."""
