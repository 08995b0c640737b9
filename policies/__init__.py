"""gpuplane's CrossGuard policy pack and cost model.

Rules live in side-effect-free modules, one per concern (cost, gpu, placement, reliability,
security, tagging; exemptions and the cost model beside them). ``policies/__main__.py`` lists
every policy and builds the ``PolicyPack`` when the Pulumi CLI runs the pack; importing any
module here starts nothing.
"""
