"""Settings: defaults that run, and one clear line for every bad value."""

from __future__ import annotations

import io
import re

import pytest

from config.settings import ConfigError, load_settings
from tests.cli import run_cli


def test_defaults_run_on_an_sqlite_file_in_the_data_dir():
    settings = load_settings({})
    assert settings.engine == "sqlite" and settings.search_backend == "sqlite"
    assert settings.effective_database_url.endswith("var/parley.sqlite3")


def test_postgres_url_selects_postgres():
    assert load_settings({"PARLEY_DATABASE_URL": "postgresql://u@h/db"}).engine == "postgres"


@pytest.mark.parametrize(
    "env,expected",
    [
        ({"PARLEY_PORT": "http"}, "PARLEY_PORT='http' is invalid: expected an integer from 1 to 65535"),
        ({"PARLEY_PORT": "70000"}, "PARLEY_PORT=70000 is invalid"),
        ({"PARLEY_SEARCH_BACKEND": "elasticsearch"}, "expected 'sqlite' or 'opensearch'"),
        ({"PARLEY_SCHEDULER": "sometimes"}, "PARLEY_SCHEDULER='sometimes' is invalid: expected true or false"),
        ({"PARLEY_LOG_FORMAT": "xml"}, "expected 'auto' (console lines on a terminal, JSON lines otherwise), 'console' or 'json'"),
        ({"PARLEY_DATABASE_URL": "mysql://x"}, "PARLEY_DATABASE_URL='mysql://x' is invalid"),
        ({"PARLEY_OPENSEARCH_PASSWORD": ""}, None),
    ],
)
def test_bad_values_name_the_variable_and_what_it_accepts(env, expected):
    if expected is None:
        load_settings(env)
        return
    with pytest.raises(ConfigError) as raised:
        load_settings(env)
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_secrets_never_appear_in_errors_or_repr():
    secret = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I="
    assert secret not in repr(load_settings({"PARLEY_MASTER_KEY": secret}))
    with pytest.raises(ConfigError) as raised:
        load_settings({"PARLEY_MASTER_KEY": secret, "PARLEY_PORT": "x"})
    assert secret not in str(raised.value)


def test_toml_file_is_read_and_environment_wins(tmp_path):
    config = tmp_path / "parley.toml"
    config.write_text('port = 9000\nlog_format = "json"\n')
    settings = load_settings({"PARLEY_CONFIG": str(config), "PARLEY_PORT": "9100"})
    assert (settings.port, settings.log_format) == (9100, "json")


def test_unknown_toml_keys_are_refused(tmp_path):
    config = tmp_path / "parley.toml"
    config.write_text("prot = 9000\n")
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load_settings({"PARLEY_CONFIG": str(config)})


async def test_cli_stops_with_one_line_on_bad_config():
    result = await run_cli("migrate", env={"PARLEY_LOG_LEVEL": "loud"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "parley: PARLEY_LOG_LEVEL='loud' is invalid: expected 'debug', 'info', 'warning' or 'error'"
    ]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("log_format", "stream", "json_lines"), [
    ("auto", io.StringIO(), True),  # a pipe or a file: what log collectors parse
    ("auto", _Terminal(), False),  # a person at a terminal
    ("console", io.StringIO(), False),
    ("json", _Terminal(), True),
])
def test_log_lines_are_json_for_machines_and_console_for_people(log_format, stream, json_lines):
    import json

    import structlog

    from config.log import configure_logging

    suite_logging = structlog.get_config()
    configure_logging(load_settings({"PARLEY_LOG_FORMAT": log_format}), stream=stream)
    try:
        structlog.get_logger().warning("disk_nearly_full", free_mb=12)
    finally:
        structlog.configure(**suite_logging)  # the suite's own log stream, which other tests read
    line = re.sub(r"\x1b\[[0-9;]*m", "", stream.getvalue().strip())  # colours on a terminal
    if json_lines:
        assert json.loads(line)["event"] == "disk_nearly_full"
    else:
        assert "disk_nearly_full" in line and "free_mb=12" in line
