import sys

from phuber.report.cli import main

sys.exit(main())
