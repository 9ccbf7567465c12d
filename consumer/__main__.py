"""`python -m consumer` is the `kafka-parquet-archiver` command."""

import sys

from consumer.cli import main

sys.exit(main())
