"""gpuplane's CrossGuard policy pack and cost model.

Rules live in modules, one per concern (cost, gpu, network, placement, pods, reliability,
security, storage, tagging; exemptions, the cost model, the Pod Security Standards walker
(podsecurity), Helm rendering (helm) and the GPU routes (gpuroutes) beside them).
``policies/__main__.py`` lists every policy and builds the ``PolicyPack`` when the Pulumi CLI
runs the pack; importing any module here starts nothing. Checks are pure functions of their
inputs, except that a Helm release's check runs ``helm template`` on a local chart archive.
"""
