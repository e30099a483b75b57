import sys

from edgeforge.cli import main

sys.exit(main())
