"""Reference training workload for the next-item model (see ``train.py`` for the loop)."""
