"""Where Basware's own OpenAPI files are, for the contract tests.

A copy ships with the tests (tests/contract/basware-openapi, as published by Basware), so a
clean clone checks its models and sandbox against them; BASWARE_OPENAPI_DIR points elsewhere,
for instance at a newer download.
"""

from __future__ import annotations

import os
from pathlib import Path

BASWARE_OPENAPI_DIR = Path(
    os.environ.get("BASWARE_OPENAPI_DIR")
    or Path(__file__).resolve().parent / "contract" / "basware-openapi"
)
