"""Viewer tokens, the dashboard servers' names, and what a viewer token's caller may do."""

from __future__ import annotations

import time

import pytest

from datapilot_contract import is_runtime_client, is_user_name, runtime_org, runtime_user
from datapilot_hub import accounts
from datapilot_hub.domain._identity import Caller, org_context
from datapilot_hub.domain.viewer_tokens import ViewerTokens
from datapilot_hub.errors import DatapilotError


def test_a_token_says_who_where_and_which_dashboard_until_it_expires(tmp_path):
    tokens = ViewerTokens(tmp_path / "key", max_age=60)
    token, expires = tokens.mint("vera", "acme", "sales")
    grant = tokens.check(token)
    assert (grant.viewer, grant.org, grant.dashboard) == ("vera", "acme", "sales")
    assert expires - time.time() == pytest.approx(60, abs=2)
    # the key is kept (0600) and read again: another process checks the same tokens
    assert (tmp_path / "key").stat().st_mode & 0o777 == 0o600
    assert ViewerTokens(tmp_path / "key").check(token) == grant
    assert ViewerTokens(tmp_path / "other").check(token) is None
    head, payload, sig = token.split(".")
    assert tokens.check(f"{head}.{payload}.{sig[:-1]}A") is None or sig.endswith("A")
    assert tokens.check(f"{head}.{payload[:-2]}xx.{sig}") is None
    assert tokens.check("not-a-token") is None
    expired = ViewerTokens(tmp_path / "key", max_age=-1).mint("vera", "acme", "sales")[0]
    assert tokens.check(expired) is None


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_viewer_tokens_caller_only_reads_in_its_organization(two_orgs, catalog, backend):
    caller = Caller.from_hub_model(
        {
            "kind": "user",
            "name": "mona",  # a manager: her role may delete; the token may not
            "datapilot_viewer": {"org": "alpha", "dashboard": "sales"},
        }
    )
    ctx = org_context(catalog, caller, "alpha")
    assert ctx.permissions == {"data:read"}
    with pytest.raises(DatapilotError) as refused:
        ctx.require("data:delete")
    assert refused.value.status == 403
    with pytest.raises(DatapilotError) as hidden:
        org_context(catalog, caller, "beta")
    assert hidden.value.status == 404
    # a viewer token of someone who is no longer a member reads nothing
    gone = Caller.from_hub_model(
        {"kind": "user", "name": "bob", "datapilot_viewer": {"org": "alpha", "dashboard": "x"}}
    )
    with pytest.raises(DatapilotError):
        org_context(catalog, gone, "alpha")


def test_dashboard_servers_have_names_no_person_can_have():
    assert runtime_user("acme") == "dashboards-acme"
    assert runtime_org("dashboards-acme") == "acme"
    assert runtime_org("dashboards-") is None and runtime_org("alice") is None
    assert not is_user_name("dashboards-acme") and not is_user_name("dashboards")
    assert is_user_name("dashboard") and is_user_name("my-dashboards")
    assert is_runtime_client("jupyterhub-user-dashboards-acme-dashboards")
    assert not is_runtime_client("jupyterhub-user-alice-acme")
    assert not is_runtime_client("jupyterhub-user-dashboards-acme-lab")
    # the server's token acts for its organization alone, as no member
    caller = Caller.from_hub_model(
        {"kind": "user", "name": "dashboards-acme", "scopes": ["access:servers!server=x/y"]}
    )
    assert caller.orgs == frozenset({"acme"})


def test_the_dashboard_account_is_no_server_account():
    name = accounts.dashboard_account("dp-", "acme")
    assert name == "dp-acme__dash"
    long = accounts.dashboard_account("dp-", "a" * 30)
    assert len(long) <= accounts.NAME_MAX and "__d" in long
    assert accounts.SYSTEM_NAME_RE.fullmatch(long)
    assert name != accounts.account_name("dp-", "dash", "acme")
