"""The Feast repository of gpuplane: see ``features.py``."""
