"""Implementations for any Kubernetes cluster (no cloud API calls)."""
