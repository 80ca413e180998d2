"""``python -m napari_dmqpm.cli``: the ``dmqpm`` command."""

import sys

from napari_dmqpm.cli import main

sys.exit(main())
