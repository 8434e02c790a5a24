"""Fixtures shared by every test: the real broker and database of tests/integration.

One stack serves the whole session (stack.local_stack: environment URLs, testcontainers when
MLC_STACK=testcontainers, else the embedded broker and PostgreSQL). Each test that needs a
database gets a fresh one, so tests never see each other's rows.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from mlconnector.home import HomeFolder
from mlconnector.kafka import ensure_topics
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector_cli.stack import Stack, forget_home_database, fresh_database, local_stack


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    async with local_stack(purpose="test") as running:
        yield running


@pytest.fixture(scope="session", autouse=True)
async def forget_test_homes(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[None]:
    """Each `mlconnector run` of a test makes a lasting home database on the local server,
    and its roles, which are the whole server's: both go with the session."""
    yield
    for home in tmp_path_factory.getbasetemp().rglob(".mlconnector"):
        await forget_home_database(HomeFolder(root=home.resolve()))


@pytest.fixture
async def database_url(stack: Stack) -> AsyncIterator[str]:
    """A fresh, empty database on the stack's server, dropped after the test."""
    async with fresh_database(stack.database_url, "t") as url:
        yield url


class TopicNames:
    """Per-test topic names, so that tests sharing one broker never read each other's events."""

    def __init__(self, suffix: str) -> None:
        self.suffix = suffix

    def __getitem__(self, topic: Topic) -> str:
        return f"{topic.value}.{self.suffix}"

    def all(self) -> list[str]:
        return [self[t] for t in Topic]


@pytest.fixture
async def topics(stack: Stack) -> TopicNames:
    """Creates a private copy of every topic for this test."""
    names = TopicNames(uuid.uuid4().hex[:8])
    await ensure_topics(stack.kafka_settings(), names.all())
    return names


@pytest.fixture
def kafka_settings(stack: Stack) -> KafkaSettings:
    return stack.kafka_settings()
