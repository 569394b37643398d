"""Where the book lives: the one place that names the repository (links to GitHub and Colab).

SSLBOOK_REPOSITORY_URL overrides it (the Pages workflow passes the repository it runs in).
"""

import os

REPOSITORY_URL = os.environ.get("SSLBOOK_REPOSITORY_URL",
                                "https://github.com/sslbook/sslbook").rstrip("/")
BRANCH = os.environ.get("SSLBOOK_BRANCH", "main")
# Colab opens notebooks from GitHub only: the Pages workflow pushes `make notebooks` here.
NOTEBOOKS_BRANCH = "notebooks"
