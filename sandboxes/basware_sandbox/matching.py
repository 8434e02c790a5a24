"""Three-way match of invoice lines against order lines and their received quantities.

An invoice line that names an order line must not invoice more than was received (when the
line requires receipts) nor more than was ordered, counting what earlier invoices already
matched, and its unit price must equal the order's within a tolerance. Any failure sends the
invoice to an exception state; lines that name no order are not matched (non-PO lines).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel

from basware_sandbox.records import CodingRow, InvoiceLine
from basware_sandbox.rules import OrderLineView

QUANTITY_TOLERANCE = 1e-6


class MatchResult(BaseModel):
    exceptions: list[str]
    coding_rows: list[CodingRow]
    # Quantity each order line (by its externalCode) takes from this invoice.
    matched: dict[str, float]

    @property
    def matches(self) -> bool:
        return not self.exceptions


def three_way_match(
    lines: list[InvoiceLine],
    order_line: Callable[[str, str], OrderLineView | None],
    already_matched: Callable[[str], float],
    *,
    price_tolerance: float = 0.01,
) -> MatchResult:
    exceptions: list[str] = []
    rows: list[CodingRow] = []
    matched: dict[str, float] = {}
    for position, line in enumerate(lines):
        index = line.row_index if line.row_index is not None else position
        if not line.order_number:
            rows.append(
                CodingRow(external_code=f"row-{index}", row_index=index, net_total=line.net_sum)
            )
            continue
        label = f"line {index} (order {line.order_number} line {line.order_row_number})"
        order = order_line(line.order_number, line.order_row_number or "")
        if order is None:
            exceptions.append(f"{label}: order line not found")
            continue
        quantity = line.quantity or 0.0
        taken = already_matched(order.externalCode) + matched.get(order.externalCode, 0.0)
        if order.isReceiptRequired is not False:
            open_received = order.received_quantity - taken
            if quantity > open_received + QUANTITY_TOLERANCE:
                exceptions.append(
                    f"{label}: invoiced quantity {quantity:g} exceeds received and not yet "
                    f"invoiced quantity {open_received:g}"
                )
        open_ordered = order.quantity - taken
        if quantity > open_ordered + QUANTITY_TOLERANCE:
            exceptions.append(
                f"{label}: invoiced quantity {quantity:g} exceeds ordered and not yet "
                f"invoiced quantity {open_ordered:g}"
            )
        price = order.netPrice
        invoiced_price = line.net_price
        if (
            price is not None
            and invoiced_price is not None
            and abs(invoiced_price - price) > price_tolerance * max(1.0, abs(price))
        ):
            exceptions.append(
                f"{label}: unit price {line.net_price:g} differs from order price {price:g}"
            )
        matched[order.externalCode] = matched.get(order.externalCode, 0.0) + quantity
        rows.append(
            CodingRow(
                external_code=f"row-{index}",
                row_index=index,
                net_total=line.net_sum,
                order_number=line.order_number,
                order_line_number=line.order_row_number,
                ordered_quantity=order.quantity,
                received_quantity=order.received_quantity,
                matched_quantity=quantity,
            )
        )
    return MatchResult(exceptions=exceptions, coding_rows=rows, matched=matched)
