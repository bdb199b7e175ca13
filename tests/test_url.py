"""Database URLs: parsed by SQLAlchemy, passwords kept out of every rendering, libpq options passed on."""

from __future__ import annotations

import pytest

from dbguard.errors import UsageError
from dbguard.targets.url import DatabaseUrl, mask


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql://bob:S3cret@db.example:5433/warehouse",
        "postgresql://bob@db.example:5433/warehouse?password=S3cret",
        "postgresql+psycopg://bob:S3cret@db.example/warehouse?sslmode=require",
    ],
)
def test_the_password_never_shows(raw: str) -> None:
    url = DatabaseUrl.parse(raw)
    assert "S3cret" not in str(url)
    assert url.libpq_env()["PGPASSWORD"] == "S3cret"  # it reaches the tools through the environment only
    assert "S3cret" not in repr(str(url))


def test_query_options_reach_the_command_line_tools() -> None:
    env = DatabaseUrl.parse("postgresql://bob@h/db?sslmode=require&connect_timeout=5").libpq_env()
    assert env["PGSSLMODE"] == "require" and env["PGCONNECT_TIMEOUT"] == "5"


def test_a_socket_directory_in_the_query_is_the_host() -> None:
    url = DatabaseUrl.parse("postgresql://postgres@/db?host=/var/run/postgresql&port=5433")
    assert (url.host, url.port) == ("/var/run/postgresql", 5433)
    assert url.libpq_env()["PGHOST"] == "/var/run/postgresql"


def test_mask_hides_passwords_in_free_text_even_with_an_at_sign() -> None:
    assert mask("cannot reach postgresql://u:sec@ret@host/db now") == "cannot reach postgresql://u:***@host/db now"
    assert mask("host=h password=hunter2 user=x") == "host=h password=*** user=x"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("postgresql://u:S3cret@h:abc/db", "not a database URL"),
        ("mysql://u@h/db", "unsupported database"),
        ("sqlite://", "needs a file"),
        ("nonsense", "not a database URL"),
    ],
)
def test_bad_urls_are_usage_errors_without_the_password(raw: str, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        DatabaseUrl.parse(raw)
    assert message in str(caught.value) and "S3cret" not in str(caught.value)


def test_same_database_sees_through_localhost_spellings() -> None:
    a = DatabaseUrl.parse("postgresql://postgres@localhost:5432/test")
    assert a.same_database(DatabaseUrl.parse("postgresql://root@127.0.0.1/test"))
    assert not a.same_database(DatabaseUrl.parse("postgresql://postgres@127.0.0.1:5432/other"))


def test_an_unescaped_at_sign_in_the_password_is_refused_without_showing_it() -> None:
    with pytest.raises(UsageError) as caught:
        DatabaseUrl.parse("postgresql://postgres:p@ssSEKRET@127.0.0.1:5432/db")
    assert "SEKRET" not in str(caught.value) and "%40" in str(caught.value)


def test_other_password_parameters_are_refused_without_showing_them() -> None:
    with pytest.raises(UsageError) as caught:
        DatabaseUrl.parse("postgresql://u@h/db?sslpassword=SEKSSL&sslmode=require")
    assert "SEKSSL" not in str(caught.value) and "sslpassword" in str(caught.value)


def test_mask_covers_a_password_with_a_space() -> None:
    assert "SEK RET" not in mask("not a database URL: 'postgresql://postgres:SEK RET@127.0.0.1:abc/db'")


def test_a_printed_command_url_has_no_password_at_all() -> None:
    url = DatabaseUrl.parse("postgresql://bob:S3cret@db.example:5433/warehouse?sslmode=require")
    assert url.without_password() == "postgresql://bob@db.example:5433/warehouse?sslmode=require"


def test_the_short_postgres_scheme_is_accepted() -> None:
    url = DatabaseUrl.parse("postgres://bob@db.example:5433/warehouse")
    assert url.connect_params()["dbname"] == "warehouse" and url.without_password().startswith("postgresql://")
