import sys

from endpoint_release.tool import main

sys.exit(main())
