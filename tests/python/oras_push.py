"""Pushes a file to an OCI registry on loopback with the `oras` client from
PyPI (pinned in .ci/install), as a tool author publishes a component:

    oras_push.py REGISTRY REPO:TAG FILE LAYER_MEDIA_TYPE CONFIG_MEDIA_TYPE

The manifest's config is an empty JSON object of CONFIG_MEDIA_TYPE; the one
layer is FILE with LAYER_MEDIA_TYPE. Prints the manifest's digest.
"""

import hashlib
import os
import shutil
import sys
import tempfile

import oras.client


def main() -> None:
    registry, target, path, layer_type, config_type = sys.argv[1:6]
    with tempfile.TemporaryDirectory() as work:
        # oras takes relative paths from the working directory.
        name = os.path.basename(path)
        shutil.copyfile(path, os.path.join(work, name))
        with open(os.path.join(work, "config.json"), "w") as config:
            config.write("{}")
        os.chdir(work)
        client = oras.client.OrasClient(hostname=registry, insecure=True)
        response = client.push(
            target=f"{registry}/{target}",
            files=[f"{name}:{layer_type}"],
            manifest_config=f"config.json:{config_type}",
            quiet=True,
        )
        response.raise_for_status()
        digest = response.headers.get("Docker-Content-Digest")
        if not digest:
            manifest = client.get_manifest(f"{registry}/{target}")
            import json

            digest = "sha256:" + hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
        print(digest)


if __name__ == "__main__":
    main()
