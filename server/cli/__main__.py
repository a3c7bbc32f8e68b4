"""`python -m server.cli ARGS` is `latent-studio ARGS` (the tests use it to run the CLI in a subprocess)."""

import sys

from server.cli import main

sys.exit(main())
