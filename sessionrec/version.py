"""The version of sessionrec: one place, read by the package, its files and ``pyproject.toml``.

Model directories, ONNX files and manifests record it (``sessionrec_version``), so a file
names the release that wrote it.
"""

__version__ = "0.2.0"
