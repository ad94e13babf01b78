"""`python -m github_index ...`"""

import sys

from github_index.cli import main

sys.exit(main())
