"""Kubernetes building blocks several capabilities share (no cloud API calls): the NVIDIA device
plugin, exec-plugin kubeconfigs, the bucket-to-volume sync init container. They import no
capability; the Knative, Kueue, Argo, MLflow and Prometheus backends live in the capability folders."""
