"""Command line and runtime tooling: set up the pinned ComfyUI, serve it, run workflows headless."""
