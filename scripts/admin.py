"""The admin commands for the make targets and compose.yaml: `stockcast.admin`, also installed as `stockcast-admin`."""
import sys

from stockcast.admin import main

if __name__ == "__main__":
    sys.exit(main())
