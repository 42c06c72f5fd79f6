import sys

from emulator.utility.cli import main

sys.exit(main())
