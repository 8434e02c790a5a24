"""The Visma sandbox's store, filters and time formats, against brute force."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from visma_sandbox.config import CompanyInfo, SeedOptions
from visma_sandbox.entities import SPECS, EntityName
from visma_sandbox.schemas import Supplier
from visma_sandbox.seed import demo_company_records, iban, luhn_check_digit, mod11_check_digit
from visma_sandbox.store import CONDITIONS, DateCondition, EntityTable, ListQuery, StoredRecord
from visma_sandbox.timefmt import TimestampStyle, parse_filter_datetime, render_datetime

BASE = datetime(2026, 1, 1)


def stored(number: int, modified: datetime, version: int, status: str = "Active") -> StoredRecord:
    record = Supplier(number=f"{number:05d}", name=f"S{number}", status=status)
    return StoredRecord((record.number,), record, modified, modified, version)


@pytest.fixture
def table() -> EntityTable:
    rng = random.Random(5)
    table = EntityTable(SPECS[EntityName.SUPPLIER])
    table.load(
        stored(n, BASE + timedelta(seconds=rng.randint(0, 50)), n, rng.choice(["Active", "OnHold"]))
        for n in range(1, 401)
    )
    for version, number in enumerate(rng.sample(range(1, 401), 60), start=1000):
        table.put(stored(number, BASE + timedelta(seconds=rng.randint(0, 80)), version))
    for number in rng.sample(range(1, 401), 20):
        table.delete((f"{number:05d}",))
    return table


@pytest.mark.parametrize("condition", list(CONDITIONS))
@pytest.mark.parametrize("offset", [0, 25, 50, 81])
def test_date_conditions_match_brute_force(table: EntityTable, condition: str, offset: int) -> None:
    value = BASE + timedelta(seconds=offset)
    query = ListQuery(
        equals=(("status", "onhold"),),
        dates=(DateCondition("lastmodifieddatetime", condition, value),),
    )
    expected = [
        r.key
        for r in sorted(table, key=lambda r: r.key)
        if CONDITIONS[condition](r.last_modified, value)
        and r.record.model_dump()["status"] == "OnHold"
    ]
    assert [r.key for r in table.select(query)] == expected


def test_the_result_cache_follows_writes(table: EntityTable) -> None:
    query = ListQuery(dates=(DateCondition("lastmodifieddatetime", ">", BASE + timedelta(days=1)),))
    assert table.select(query) == []
    table.put(stored(7, BASE + timedelta(days=2), 9999))
    assert [r.key for r in table.select(query)] == [("00007",)]
    assert len(table) == 380


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("2026-03-04", datetime(2026, 3, 4)),
        ("2026-03-04 05:06:07", datetime(2026, 3, 4, 5, 6, 7)),
        ("2026-03-04 05:06:07.8", datetime(2026, 3, 4, 5, 6, 7, 800_000)),
        ("2026-03-04T05:06:07", datetime(2026, 3, 4, 5, 6, 7)),
        ("2026-03-04T05:06:07.089", datetime(2026, 3, 4, 5, 6, 7, 89_000)),
        ("2026-03-04T05:06:07Z", None),
        ("2026-03-04T05:06:07+01:00", None),
        ("2026-03-04T05:06", None),
        ("2026-13-04", None),
        ("04.03.2026", None),
    ],
)
def test_only_the_five_documented_filter_formats_parse(text: str, parsed: datetime | None) -> None:
    assert parse_filter_datetime(text) == parsed


def test_rendering_trims_fractions_like_dotnet() -> None:
    value = datetime(2026, 10, 14, 9, 21, 7, 310_000)
    assert render_datetime(value, TimestampStyle.NAIVE) == "2026-10-14T09:21:07.31"
    assert (
        render_datetime(value.replace(microsecond=0), TimestampStyle.NAIVE) == "2026-10-14T09:21:07"
    )
    assert render_datetime(value, TimestampStyle.UTC_Z) == "2026-10-14T09:21:07.31Z"
    assert render_datetime(value, TimestampStyle.OFFSET) == "2026-10-14T11:21:07.31+02:00"


def test_demo_identifiers_carry_valid_check_digits() -> None:
    records = demo_company_records(CompanyInfo.demo(1), SeedOptions(suppliers=80), random.Random(1))
    suppliers = [s for s in records[EntityName.SUPPLIER] if isinstance(s, Supplier)]
    assert {
        s.main_address.country.id for s in suppliers if s.main_address and s.main_address.country
    } == {
        "NO",
        "SE",
        "DK",
        "FI",
    }
    for supplier in suppliers:
        vat, corporate = supplier.vat_registration_id or "", supplier.corporate_id or ""
        bank = supplier.supplier_payment_method_details[0].payment_method_detail_value or ""
        if vat.startswith("NO"):
            assert vat == f"NO{corporate}MVA"
            assert mod11_check_digit(corporate[:8], (3, 2, 7, 6, 5, 4, 3, 2)) == int(corporate[8])
            assert mod11_check_digit(bank[:10], (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)) == int(bank[10])
        elif vat.startswith("SE"):
            digits = corporate.replace("-", "")
            assert luhn_check_digit(digits[:9]) == int(digits[9])
            assert luhn_check_digit(bank.replace("-", "")[:-1]) == int(bank[-1])
        elif vat.startswith("DK"):
            assert (
                sum(int(d) * w for d, w in zip(corporate, (2, 7, 6, 5, 4, 3, 2, 1), strict=True))
                % 11
                == 0
            )
            assert iban("DK", bank[4:]) == bank
        else:
            assert vat == "FI" + corporate.replace("-", "")
            assert iban("FI", bank[4:]) == bank
    # A published IBAN example: GB82 WEST 1234 5698 7654 32.
    assert iban("GB", "WEST12345698765432") == "GB82WEST12345698765432"
