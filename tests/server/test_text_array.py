"""A list of strings sent to PostgreSQL as the text of an array (`server.db.among.text_array`) reads
back exactly as it was, whatever the strings hold: the hot path's device ids, request ids and
agent versions go this way, and a request id is whatever a client put in its header."""

from __future__ import annotations

from sqlalchemy import select, text

from server.db.among import text_array, text_array_parameter
from server.db.engine import make_engine
from tests.helpers.servers import PostgresCluster

AWKWARD = [
    "plain",
    'a "quoted" word',
    "back\\slash",
    "\\",
    '"',
    "a,b",
    "{braces}",
    "  spaces  ",
    "",
    "NULL",
    "null",
    "tab\tand\nnewline",
    "ünïcödé 学校",
    "'single'",
]


def test_any_string_reads_back_as_it_was_through_the_cast(postgres: PostgresCluster) -> None:
    engine = make_engine(postgres.new_database())
    try:
        with engine.connect() as connection:
            statement = select(text_array_parameter("values"))
            back = connection.execute(statement, {"values": text_array([*AWKWARD, None])}).scalar_one()
            assert back == [*AWKWARD, None]
            # Kept in the given order and each once, as unnest reads them.
            rows = (
                connection.execute(
                    text(
                        "SELECT value FROM unnest(CAST(:values AS VARCHAR[]))"
                        " WITH ORDINALITY AS t(value, n) ORDER BY n"
                    ),
                    {"values": text_array(AWKWARD)},
                )
                .scalars()
                .all()
            )
            assert rows == AWKWARD
            assert connection.execute(statement, {"values": text_array([])}).scalar_one() == []
    finally:
        engine.dispose()


def test_the_text_quotes_every_element() -> None:
    assert text_array(["a", 'b"c', "d\\e", None]) == '{"a","b\\"c","d\\\\e",NULL}'
