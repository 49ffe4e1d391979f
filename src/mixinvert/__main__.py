"""``python -m mixinvert``: the same as the ``mixinvert`` command."""

import sys

from mixinvert.cli import main

sys.exit(main())
