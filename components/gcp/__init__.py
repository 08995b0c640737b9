"""GCP building blocks several capabilities share: Workload Identity service accounts and the
naming rules (iam.py), labels and per-zone counts (conventions.py). They import no capability;
the GKE, Cloud Run, GCS and Vertex AI backends live in the capability folders."""
