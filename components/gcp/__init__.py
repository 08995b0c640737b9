"""GCP implementations (GKE, GCS, Cloud Run, Vertex AI)."""
