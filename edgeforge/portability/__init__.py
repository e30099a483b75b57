"""Does an artifact built here run, and agree, on another platform? The ARM64 check.

Data flows one way: ``probe`` runs every variant of the artifacts on a fixed set of images inside some
Python interpreter (this one, or an aarch64 one under emulation: ``arm64``) and writes what it saw;
``compare`` holds two probes side by side against the thresholds; ``check`` drives the three and records
the verdict per variant (``portable`` / ``x86-only`` / ``differs``) in each artifact's manifest.

``probe`` imports nothing but ``edgeforge.runtime`` and numpy: inside the aarch64 environment only the
thin runtime is installed (numpy + onnxruntime + Pillow), which the check thereby proves suffices.
"""
