"""Where the book lives, for the website and the notebooks: ``sslbook.REPOSITORY``, the one place
that names the repository (read from sslbook/__init__.py without importing the package).

SSLBOOK_REPOSITORY_URL overrides it (the Pages workflow passes the repository it runs in).
"""

import ast
import os
from pathlib import Path


def _repository() -> str:
    tree = ast.parse((Path(__file__).resolve().parents[2] / "sslbook" / "__init__.py").read_text())
    return next(node.value.value for node in tree.body if isinstance(node, ast.Assign)
                and [t.id for t in node.targets if isinstance(t, ast.Name)] == ["REPOSITORY"])


REPOSITORY_URL = os.environ.get("SSLBOOK_REPOSITORY_URL", _repository()).rstrip("/")
BRANCH = os.environ.get("SSLBOOK_BRANCH", "main")
# Colab opens notebooks from GitHub only: the Pages workflow pushes `make notebooks` here.
NOTEBOOKS_BRANCH = "notebooks"
