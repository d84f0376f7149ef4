"""``python -m tracelens.samples``: write the sample production log (see :func:`tracelens.samples.main`)."""

import sys

from tracelens.samples.generator import main

sys.exit(main())
