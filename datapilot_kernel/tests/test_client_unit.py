"""Unit tests of the client's pure logic: settings, validation, error and job parsing.

Nothing here talks to a service; the integration tests run the client against the
real data service.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from traitlets import TraitType

import datapilot_kernel as dp
from datapilot_kernel import _calls, _errors, _flow, _validation

ENV_VARS = ("DATAPILOT_URL", "JUPYTERHUB_API_TOKEN", "DATAPILOT_ORG")


@pytest.fixture
def env(monkeypatch):
    """A clean Datapilot environment, and a fresh default client before and after."""
    for var in (*ENV_VARS, "DATAPILOT_DASHBOARD_PINS"):
        monkeypatch.delenv(var, raising=False)
    dp.reset_client()
    yield monkeypatch
    dp.reset_client()


@pytest.fixture
def configured(env):
    env.setenv("DATAPILOT_URL", "http://127.0.0.1:9/services/datapilot/")
    env.setenv("JUPYTERHUB_API_TOKEN", "secret")
    env.setenv("DATAPILOT_ORG", "acme")
    return env


# -- settings -----------------------------------------------------------------------


def test_defaults_from_environment(configured):
    client = dp.DatapilotClient()
    assert client.url == "http://127.0.0.1:9/services/datapilot/"
    assert client.token == "secret"
    assert client.org == "acme"
    assert client.progress is True
    assert client.progress_threshold == 4 * 1024 * 1024
    assert client._client_options()["base_url"] == ("http://127.0.0.1:9/services/datapilot/api/v1/")
    assert client._client_options()["headers"] == {"Authorization": "token secret"}


def test_environment_read_when_client_is_created_not_at_import(env):
    env.setenv("DATAPILOT_ORG", "first")
    assert dp.DatapilotClient().org == "first"
    env.setenv("DATAPILOT_ORG", "second")
    assert dp.DatapilotClient().org == "second"


def test_arguments_override_environment(configured):
    client = dp.DatapilotClient(url="http://other/dp/", token="t2", org="beta", progress=False)
    assert (client.url, client.token, client.org, client.progress) == (
        "http://other/dp/",
        "t2",
        "beta",
        False,
    )


@pytest.mark.parametrize(
    "given, expected",
    [
        ("http://h/services/datapilot", "http://h/services/datapilot/"),
        ("http://h/services/datapilot/", "http://h/services/datapilot/"),
        ("  http://h/x  ", "http://h/x/"),
        ("", ""),
    ],
)
def test_url_ends_with_slash(env, given, expected):
    assert dp.DatapilotClient(url=given).url == expected
    env.setenv("DATAPILOT_URL", given)
    assert dp.DatapilotClient().url == expected


def test_missing_settings_name_the_environment_variables(env):
    env.setenv("JUPYTERHUB_API_TOKEN", "secret")
    with pytest.raises(dp.DatapilotError) as info:
        dp.DatapilotClient().datasets()
    error = info.value
    assert error.code == "not_configured"
    assert error.status is None
    assert "DATAPILOT_URL" in str(error) and "DATAPILOT_ORG" in str(error)
    assert "JUPYTERHUB_API_TOKEN" not in str(error)
    assert error.details == {"missing": ["DATAPILOT_URL", "DATAPILOT_ORG"]}


@pytest.mark.parametrize("missing", ENV_VARS)
def test_each_missing_setting_is_named(configured, missing):
    configured.delenv(missing)
    with pytest.raises(dp.DatapilotError, match=missing):
        dp.DatapilotClient()._check_config()


@pytest.mark.parametrize(
    "org",
    [
        "a",
        "Acme",
        "-acme",
        "acme-",
        "ac--me",
        "ac/me",
        "x" * 31,
        "acme\n",
        "acme ",
        "\u0430cme",
        "\uff41cme",
        "ac\u200bme",
    ],
)
def test_invalid_org_is_refused(configured, org):
    with pytest.raises(dp.DatapilotError, match="is not a valid organization slug") as info:
        dp.DatapilotClient(org=org)._check_config()
    assert info.value.code == "invalid_name"
    assert info.value.details == {"field": "org"}


def test_every_config_trait_has_help():
    traits = dp.DatapilotClient.class_traits(config=True)
    assert {"url", "token", "org", "progress", "progress_threshold", "timeout"} <= set(traits)
    undocumented = [name for name, trait in traits.items() if not _help(trait)]
    assert undocumented == []


def _help(trait: TraitType) -> str:
    return (trait.help or "").strip()


# -- the default client -------------------------------------------------------------


def test_default_client_is_reused_until_reset(configured):
    first = dp.get_client()
    assert dp.get_client() is first
    configured.setenv("DATAPILOT_ORG", "beta")
    assert dp.get_client().org == "acme"
    dp.reset_client()
    assert dp.get_client() is not first
    assert dp.get_client().org == "beta"


def test_reset_client_can_install_a_client(env):
    mine = dp.DatapilotClient(org="mine")
    dp.reset_client(mine)
    assert dp.get_client() is mine


def test_module_functions_use_the_default_client(env):
    # nothing configured: the module-level call fails before any request
    with pytest.raises(dp.DatapilotError, match="DATAPILOT_URL"):
        dp.datasets()


async def test_async_functions_use_the_default_client(env):
    with pytest.raises(dp.DatapilotError, match="DATAPILOT_ORG"):
        await dp.adatasets()


# -- derived calls: coroutines and module-level functions -----------------------------


CALLS = ["datasets", "load", "aggregate", "save", "upload", "publish"]


@pytest.mark.parametrize("name", CALLS)
def test_coroutines_and_functions_share_the_methods_signature(name):
    method = getattr(dp.DatapilotClient, name)
    coroutine = getattr(dp.DatapilotClient, f"a{name}")
    assert inspect.iscoroutinefunction(coroutine) and not inspect.iscoroutinefunction(method)
    assert inspect.signature(coroutine) == inspect.signature(method)
    without_self = list(inspect.signature(method).parameters.values())[1:]
    for function, is_async in ((getattr(dp, name), False), (getattr(dp, f"a{name}"), True)):
        assert inspect.iscoroutinefunction(function) is is_async
        assert list(inspect.signature(function).parameters.values()) == without_self


@pytest.mark.parametrize("name", CALLS)
def test_derived_docstrings_keep_the_methods_documentation(name):
    doc = inspect.getdoc(getattr(dp.DatapilotClient, name))
    summary, _, body = doc.partition("\n")
    coroutine_doc = inspect.getdoc(getattr(dp.DatapilotClient, f"a{name}"))
    assert coroutine_doc.startswith(summary[:-1] + ", without blocking the event loop.")
    assert coroutine_doc.endswith(body.strip())
    function_doc = inspect.getdoc(getattr(dp, name))
    assert function_doc.startswith(summary[:-1] + ", with the default client.")
    assert f":meth:`DatapilotClient.{name}`" in function_doc
    assert function_doc.endswith(body.strip())


def test_derived_calls_check_their_arguments_like_the_method(configured):
    client = dp.DatapilotClient()
    with pytest.raises(TypeError, match="name"):
        client.load()
    with pytest.raises(TypeError, match="unexpected keyword argument 'colums'"):
        dp.load("sales", colums=["a"])


async def test_coroutine_applies_the_methods_defaults(configured):
    # mode defaults to "create" and is validated before any request
    with pytest.raises(dp.DatapilotError, match="not a valid dataset name"):
        await dp.asave(None, "Bad")
    with pytest.raises(dp.DatapilotError, match="mode must be"):
        await dp.DatapilotClient().aupload("x.csv", None, "merge")


# -- validation ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "sales", "sales_2024", "s" + "x" * 62])
def test_valid_names(name):
    assert dp.validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Sales",
        "2024_sales",
        "_sales",
        "sales-2024",
        "sales 2024",
        "s" + "x" * 63,
        None,
        "sales\n",
        "sales ",
        "s\u0430les",
        "\uff53ales",
        "sa\u200bles",
    ],
)
def test_invalid_names(name):
    with pytest.raises(dp.DatapilotError, match="not a valid dataset name") as info:
        dp.validate_name(name)
    assert info.value.code == "invalid_name"
    assert info.value.details == {"field": "name"}


@pytest.mark.parametrize("mode", ["create", "replace", "append"])
def test_valid_modes(mode):
    assert dp.validate_mode(mode) == mode


@pytest.mark.parametrize("mode", ["overwrite", "", None, "CREATE", "create\n"])
def test_invalid_modes(mode):
    with pytest.raises(dp.DatapilotError, match="mode must be one of create, replace, append") as e:
        dp.validate_mode(mode)
    assert e.value.code == "invalid_mode" and e.value.details == {"field": "mode"}


def test_calls_validate_before_any_request(configured):
    # port 9 (discard) is never reached: validation comes first
    client = dp.DatapilotClient()
    with pytest.raises(dp.DatapilotError, match="not a valid dataset name"):
        client.load("Bad Name")
    with pytest.raises(dp.DatapilotError, match="not a valid dataset name"):
        client.save(None, "Bad Name")
    with pytest.raises(dp.DatapilotError, match="mode must be"):
        client.save(None, "good", mode="merge")
    with pytest.raises(dp.DatapilotError, match="mode must be"):
        client.upload("whatever.csv", mode="merge")


async def test_async_calls_validate_before_any_request(configured):
    client = dp.DatapilotClient()
    with pytest.raises(dp.DatapilotError, match="not a valid dataset name"):
        await client.aload("Bad Name")
    with pytest.raises(dp.DatapilotError, match="mode must be"):
        await client.asave(None, "good", mode="merge")


def test_validation_comes_before_configuration(env):
    with pytest.raises(dp.DatapilotError) as info:
        dp.DatapilotClient().load("Bad Name")
    assert info.value.code == "invalid_name"


@pytest.mark.parametrize(
    "path, name",
    [
        ("sales.csv", "sales"),
        ("/data/Sales Report 2024.csv", "sales_report_2024"),
        ("Übersicht-Q1.xlsx", "ubersicht_q1"),
        ("2024.parquet", "d_2024"),
        ("__.csv", "dataset"),
        ("data.tar.csv", "data"),
        ("x" * 80 + ".csv", "x" * 63),
    ],
)
def test_name_from_path(path, name):
    assert dp.name_from_path(path) == name
    assert dp.validate_name(dp.name_from_path(path))


@pytest.mark.parametrize(
    "path, content_type",
    [
        ("a.csv", "text/csv"),
        ("a.CSV", "text/csv"),
        ("a.parquet", "application/vnd.apache.parquet"),
        ("a.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("a.xls", "application/vnd.ms-excel"),
        ("a.bin", "application/octet-stream"),
    ],
)
def test_content_type_for(path, content_type):
    assert _validation.content_type_for(path) == content_type


@pytest.mark.parametrize(
    "filters, columns",
    [
        (None, []),
        ([("a", "==", 1)], ["a"]),
        ([("a", ">", 1), ("b", "in", [1, 2]), ("a", "<", 5)], ["a", "b"]),
        ([[("a", "==", 1)], [("c", "!=", "x")]], ["a", "c"]),
        ("not a filter", []),
    ],
)
def test_filter_columns(filters, columns):
    assert _validation.filter_columns(filters) == columns


# -- errors -------------------------------------------------------------------------


def test_error_from_service_body():
    response = httpx.Response(
        404,
        json={
            "error": "not_found",
            "message": "No dataset named 'sales' is visible to you.",
            "details": {"dataset": "sales"},
        },
    )
    error = dp.DatapilotError.from_response(response)
    assert isinstance(error, Exception)
    assert str(error) == "No dataset named 'sales' is visible to you."
    assert error.message == str(error)
    assert (error.status, error.code, error.details) == (404, "not_found", {"dataset": "sales"})


def test_error_from_jupyterhub_body():
    # the hub's own errors (a token it rejects) carry a message but no code
    response = httpx.Response(403, json={"status": 403, "message": "Invalid token."})
    error = dp.DatapilotError.from_response(response)
    assert (str(error), error.status, error.code, error.details) == (
        "Invalid token.",
        403,
        "http_403",
        {},
    )


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(502, text="<html>Bad Gateway</html>"),
        httpx.Response(500, json=["not", "a", "dict"]),
        httpx.Response(500, json={"error": "boom", "message": "", "details": "oops"}),
    ],
)
def test_error_without_a_usable_message(response):
    error = dp.DatapilotError.from_response(response)
    assert error.status == response.status_code
    assert str(error).startswith(f"The Datapilot service answered {response.status_code}")
    assert isinstance(error.details, dict)


def test_error_names_the_request_when_known():
    request = httpx.Request("GET", "http://h/services/datapilot/api/v1/orgs/acme/datasets")
    response = httpx.Response(503, text="down", request=request)
    error = dp.DatapilotError.from_response(response)
    assert "GET http://h/services/datapilot/api/v1/orgs/acme/datasets" in str(error)
    assert error.code == "http_503"


@pytest.mark.parametrize(
    "headers, seconds", [({"Retry-After": "3"}, 3.0), ({}, 1.0), ({"Retry-After": "soon"}, 1.0)]
)
def test_retry_after(headers, seconds):
    assert _flow.retry_after(httpx.Response(429, headers=headers)) == seconds


def test_retry_after_is_bounded():
    assert _flow.retry_after(httpx.Response(429, headers={"Retry-After": "3600"})) == 30.0


def test_succeeded_job_does_not_raise():
    _errors.raise_for_job({"id": "j1", "state": "succeeded", "progress": 1.0, "error": None})


def test_failed_job_raises_its_error():
    job = {"id": "j1", "state": "failed", "progress": 0.4, "error": "Row 12: not a number."}
    with pytest.raises(dp.DatapilotError) as info:
        _errors.raise_for_job(job)
    assert str(info.value) == "Row 12: not a number."
    assert info.value.code == "job_failed"
    assert info.value.details == {"job": job}


def test_failed_job_without_error_still_says_so():
    with pytest.raises(dp.DatapilotError, match="Job j1 failed"):
        _errors.raise_for_job({"id": "j1", "state": "failed", "error": None})


def test_cancelled_job_raises():
    with pytest.raises(dp.DatapilotError, match="cancelled") as info:
        _errors.raise_for_job({"id": "j1", "state": "cancelled", "error": None})
    assert info.value.code == "job_cancelled"


# -- import cost --------------------------------------------------------------------


def test_import_is_cheap():
    code = (
        "import sys, datapilot_kernel\n"
        "heavy = {'pandas', 'pyarrow', 'httpx', 'tqdm'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    # from the checkout, so the test needs no installed copy
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(dp.__file__).parents[1])


def test_public_names():
    for name in dp.__all__:
        assert getattr(dp, name).__doc__, name
    assert {"datasets", "load", "save", "upload", "adatasets", "aload", "asave"} <= set(dp.__all__)


# -- response shaping ---------------------------------------------------------------


def test_datasets_frame():
    frame = _calls.datasets_frame(
        [
            {
                "name": "sales",
                "version": 3,
                "rows": 10,
                "columns": 4,
                "bytes": 2048,
                "updated": "2024-05-01T10:00:00+00:00",
                "owner": "ana",
            },
            {"name": "new", "version": None, "rows": 0, "columns": 0, "bytes": 0, "updated": None},
        ]
    )
    assert list(frame.columns) == [
        "name",
        "version",
        "rows",
        "columns",
        "bytes",
        "updated",
        "owner",
    ]
    assert str(frame["updated"].dt.tz) == "UTC"
    assert frame.loc[0, "updated"].year == 2024
    assert frame["updated"].isna().tolist() == [False, True]


def test_empty_datasets_frame_has_the_columns():
    frame = _calls.datasets_frame([])
    assert frame.empty
    assert list(frame.columns) == ["name", "version", "rows", "columns", "bytes", "updated"]
