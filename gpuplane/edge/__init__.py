"""``gpuplane edge``: edge inference on one machine — simulated sites, wave rollouts gated on each
site's own measurements, rollback, a site cut off and catching up (see :mod:`gpuplane.edge.demo`).

``rollout.py`` holds the controller (waves, gate, rollback, catch-up), ``fleet.py`` the site
processes and the models they are given, ``demo.py`` the scenario and its report.
"""
