import sys

from mr1cli.cli import main

sys.exit(main())
