"""Entry point of the gpuplane component package (run by the Pulumi CLI, never imported by users).

``pulumi package add`` and ``pulumi up`` of a TypeScript, Go, C#, Java or YAML program start this
as the ``gpuplane`` resource plugin: it serves every component in ``components.__all__`` over
gRPC, with the schema that ``gpuplane.component_package`` infers from their type annotations
(checked in as provider/schema.json and verified by tests/test_component_package.py).

It runs the SDK's ``ComponentProvider`` (a subclass that adds references between gpuplane
components) with ``pulumi.provider.main``, which is what
``pulumi.provider.experimental.component_provider_host`` does for the plain class.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> None:
    # Serve the components of the checkout this folder is in, even where the virtualenv holds
    # another gpuplane install.
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from gpuplane.component_package import serve

    serve(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
