import sys

from r1video.cli import main

sys.exit(main())
