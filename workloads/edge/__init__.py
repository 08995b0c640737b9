"""Edge inference workloads: one site serving an ONNX model with onnxruntime (``site.py``).

The model files come from ``python -m workloads.training.export --format onnx``; the rollout that
moves sites from one model to the next is the controller's (``gpuplane edge``), not the site's.
"""
