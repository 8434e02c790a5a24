"""The profile summary charges each sample to the project's own code where it can."""

from __future__ import annotations

import pytest

from bench.profiling import charged_frame, summarise

START = "main (basware_writer/__main__.py:12);run_service (mlconnector/service.py:37)"
LOOP = f"{START};run (asyncio/runners.py:118);BaseEventLoop._run_once (asyncio/base_events.py:1922)"
POLL = f"{LOOP};EpollSelector.select (selectors.py:468)"
TASK = f"{LOOP};Handle._run (asyncio/events.py:80);__step (asyncio/tasks.py:267)"
UPSERT = f"{TASK};upsert_vendors (mlconnector/basware/client.py:88)"
SEND = f"{UPSERT};send (httpx/_client.py:914);_send (httpcore/_sync.py:10)"
RENDER = f"{TASK};render_pdf (basware_sandbox/invoices.py:45);dumps (json/encoder.py:200)"


@pytest.mark.parametrize(
    ("stack", "expected"),
    [
        (SEND, "upsert_vendors (mlconnector/basware/client.py)"),
        (RENDER, "render_pdf (basware_sandbox/invoices.py)"),
        # A task step in library code: not the service's start-up frames below the loop.
        (f"{TASK};getone (aiokafka/consumer.py:1)", "getone (aiokafka/consumer.py)"),
        # Outside any callback, the loop polls its sockets.
        (POLL, "EpollSelector.select (selectors.py)"),
        # Outside the loop altogether (start-up): the deepest own frame.
        (START, "run_service (mlconnector/service.py)"),
        ("<garbled>", "<garbled>"),
    ],
)
def test_a_sample_is_charged_to_the_deepest_own_frame(stack: str, expected: str) -> None:
    assert charged_frame(stack) == expected


def test_summary_ranks_frames_by_their_share_of_samples() -> None:
    raw = "\n".join([f"{SEND} 30", f"{UPSERT} 10", f"{RENDER} 50", f"{POLL} 10", "", "junk"])
    profile = summarise("basware-writer", raw)
    assert profile.samples == 100
    assert [(h.frame, round(h.share, 2)) for h in profile.hotspots] == [
        ("render_pdf (basware_sandbox/invoices.py)", 0.5),
        ("upsert_vendors (mlconnector/basware/client.py)", 0.4),
        ("EpollSelector.select (selectors.py)", 0.1),
    ]
