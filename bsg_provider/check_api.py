"""
``python -m bsg_provider.check_api --conn-id bsg_default``: check the provider's API assumptions
against a real account, read-only. The probe itself lives in :mod:`bsg_provider.probe`.
"""

from __future__ import annotations

import sys

from bsg_provider.probe.run import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
