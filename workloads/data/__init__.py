"""Synthetic retail data for the reference pipeline (see ``workloads.data.generate``)."""
