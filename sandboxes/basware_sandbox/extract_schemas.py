"""Copies the request schemas the sandbox validates from Basware's own OpenAPI files.

The sandbox ships this subset (data/basware-schemas.json) instead of the 1.3 MB P2P file.
Regenerate after updating Basware's files (docs/basware-p2p.md §1):

    python -m basware_sandbox.extract_schemas tests/contract/basware-openapi
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

# Schemas of request bodies the sandbox accepts, per OpenAPI file.
VALIDATED_SCHEMAS: dict[str, tuple[str, list[str]]] = {
    "p2p": (
        "basware-p2p-openapi.json",
        [
            "VendorEntity",
            "OrderEntity",
            "OrderLineEntity",
            "AccountEntity",
            "CostCenterEntity",
            "TaxCodeEntity",
            "PaymentTermEntity",
            "ProjectEntityV2",
            "ExchangeRateEntity",
            "GenericListEntity",
            "TransferResponseEntity",
            "PaymentResponseEntity",
            "PrebookResponseEntity",
            "DeleteRequest",
            "ProcessingStatusGetBatchRequest",
        ],
    ),
    "push": ("basware-push-notification-openapi.json", ["Subscription-Input"]),
    "smartpdf": ("basware-smart-pdf-openapi.json", ["UploadRequest"]),
}

PACKAGED = Path(__file__).parent / "data" / "basware-schemas.json"


def _referenced(schemas: dict[str, Any], roots: list[str]) -> list[str]:
    """The roots and every schema they reach through $ref, in a stable order."""
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        stack: list[Any] = [schemas[name]]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str):
                    pending.append(ref.rsplit("/", 1)[-1])
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
    return sorted(seen)


def extract(reference_dir: Path) -> dict[str, Any]:
    """One document per API, each shaped like an OpenAPI file so local $refs still resolve."""
    extracted: dict[str, Any] = {}
    for api, (filename, roots) in VALIDATED_SCHEMAS.items():
        spec = json.loads((reference_dir / filename).read_text(encoding="utf-8"))
        schemas = spec["components"]["schemas"]
        extracted[api] = {
            "source": f"{filename} (info.version {spec['info']['version']})",
            "openapi": spec["openapi"],
            "components": {"schemas": {n: schemas[n] for n in _referenced(schemas, roots)}},
        }
    return extracted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("reference_dir", type=Path)
    args = parser.parse_args()
    PACKAGED.write_text(json.dumps(extract(args.reference_dir), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {PACKAGED}")


if __name__ == "__main__":
    main()
