"""`python -m processors.face`: the avatar tool (processors/face/tool.py)."""

import sys

from processors.face.tool import main

sys.exit(main())
