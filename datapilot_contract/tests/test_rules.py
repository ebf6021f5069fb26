"""The contract's rules, on the values that slipped through before (``re.match`` with ``$``)."""

from __future__ import annotations

import re

import pytest

from datapilot_contract import (
    DATASET_NAME,
    ERROR_CODES,
    INVALID_MODE,
    INVALID_NAME,
    MODES,
    ORG_NAME,
    ORG_SLUG,
    ContractError,
    check_dataset_name,
    check_mode,
    check_org_slug,
    check_user_name,
    is_dataset_name,
    is_org_slug,
    is_user_name,
    user_name_json_schema,
)

# what every part must refuse whatever the rule: a trailing newline, surrounding
# whitespace, Unicode look-alikes of ASCII letters and digits, invisible characters
TRICKS = [
    "acme\n",
    "acme\r\n",
    "\nacme",
    "acme ",
    " acme",
    "acme\t",
    "ac\x00me",
    "ac\u200bme",  # zero-width space
    "\u0430cme",  # Cyrillic a
    "\uff41cme",  # full-width a
    "acm\u0435",  # Cyrillic e
    "acme\u00a0",  # no-break space
    "acme\u2028",  # line separator
    "acme\ufeff",  # byte-order mark
    "ac\u0332me",  # combining low line
    "\u0661\u0662acme",  # Arabic-Indic digits
]


@pytest.mark.parametrize("slug", ["ab", "acme", "acme-corp", "a1-b2-c3", "42", "x" * 30])
def test_valid_slugs(slug):
    assert is_org_slug(slug) and check_org_slug(slug) == slug


@pytest.mark.parametrize(
    "slug",
    ["", "a", "x" * 31, "Acme", "-acme", "acme-", "ac--me", "ac_me", "ac/me", "ac.me", None, 7]
    + TRICKS,
)
def test_invalid_slugs(slug):
    assert not is_org_slug(slug)
    with pytest.raises(ContractError) as info:
        check_org_slug(slug, "slug")
    assert (info.value.field, info.value.code) == ("slug", INVALID_NAME)
    assert "is not a valid organization slug" in info.value.message
    assert repr(slug)[:40] in info.value.message.replace("...", "")


@pytest.mark.parametrize("name", ["a", "sales", "sales_2024", "s_", "s" + "x" * 62])
def test_valid_dataset_names(name):
    assert is_dataset_name(name) and check_dataset_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Sales", "2024_sales", "_sales", "sales-2024", "sales 2024", "s" + "x" * 63, None, b"a"]
    + [t.replace("acme", "sales") for t in TRICKS],
)
def test_invalid_dataset_names(name):
    assert not is_dataset_name(name)
    with pytest.raises(ContractError, match="is not a valid dataset name") as info:
        check_dataset_name(name)
    assert (info.value.field, info.value.code) == ("name", INVALID_NAME)


@pytest.mark.parametrize(
    "user",
    [
        "alice",
        "bob smith",
        "a.b@example.com",
        "jos\u00e9",
        "\u0430lice",
        "\u00df",
        "x" * 255,
        "a,b",
    ],
)
def test_valid_user_names(user):
    # letters of any script are names (a Cyrillic "аlice" is a different person); spaces
    # and commas are left to the hub's authenticator, which may refuse them
    assert is_user_name(user) and check_user_name(user) == user


@pytest.mark.parametrize(
    "user, problem",
    [
        ("", "non-empty"),
        (None, "non-empty"),
        ("x" * 256, "longer than 255"),
        ("a/b", "'/'"),
        ("alice\n", "whitespace"),
        (" alice", "whitespace"),
        ("alice\u3000", "whitespace"),
        ("al\x07ice", "invisible"),
        ("al\u200bice", "invisible"),
        ("al\u202eice", "invisible"),  # right-to-left override
        ("al\u2028ice", "invisible"),
        ("..", "dots"),
        (".", "dots"),
        ("%2e%2E", "dots"),
        ("Alice", "upper-case"),
        ("\u0391lice", "upper-case"),  # Greek capital alpha
        ("\uff41lice", "NFKC"),  # full-width a
        ("jose\u0301", "NFKC"),  # decomposed é
        ("\ufb01sh", "NFKC"),  # fi ligature
        ("service:datapilot-admin", "JupyterHub services"),
    ],
)
def test_invalid_user_names(user, problem):
    assert not is_user_name(user)
    with pytest.raises(ContractError, match="is not a valid user name") as info:
        check_user_name(user)
    assert problem in info.value.message
    assert (info.value.field, info.value.code) == ("user", INVALID_NAME)


def test_modes():
    assert MODES == ("create", "replace", "append")
    for mode in MODES:
        assert check_mode(mode) == mode
    for bad in ("merge", "CREATE", "create\n", "", None, ["create"]):
        with pytest.raises(ContractError, match="mode must be one of create, replace, append") as e:
            check_mode(bad)
        assert (e.value.field, e.value.code) == ("mode", INVALID_MODE)


def test_long_values_are_cut_in_messages():
    with pytest.raises(ContractError) as info:
        check_dataset_name("x" * 10_000)
    assert len(info.value.message) < 200


@pytest.mark.parametrize("rule", [ORG_SLUG, DATASET_NAME, ORG_NAME])
def test_json_schemas_say_the_same_as_the_checks(rule):
    """The OpenAPI patterns are ECMA-262 searches; read as such (``$`` only at the very end,
    which Python spells ``\\Z``) they accept exactly what the checks accept."""
    schema = rule.json_schema()
    assert schema["pattern"].startswith("^") and schema["pattern"].endswith("$")
    ecma = re.compile(schema["pattern"][:-1] + r"\Z")
    samples = ["ab", "acme", "acme-corp", "a", "x" * 30, "x" * 31, "sales_2024", "s" * 64]
    samples += ["Acme Corp", " \u3000 ", "\u00c5ngstr\u00f6m AB", "x" * 200, "x" * 201, "", "a\x85"]
    for value in samples + TRICKS:
        in_schema = (
            schema["minLength"] <= len(value) <= schema["maxLength"]
            and ecma.search(value) is not None
        )
        assert in_schema == rule.matches(value), value


def test_organization_names_any_script_but_no_control_characters_or_only_spaces():
    for name in ("Acme Corp", "  Acme  ", "\u00c5ngstr\u00f6m AB", "\u6771\u4eac", "a" * 200):
        assert ORG_NAME.matches(name), name
    for name in ("", " ", "\u3000\u00a0", "a\x00b", "Acme\n", "a\x85", "a" * 201, None, 7):
        assert not ORG_NAME.matches(name), name


def test_user_name_schema_refuses_what_it_can_express():
    ecma = re.compile(user_name_json_schema()["pattern"][:-1] + r"\Z")
    for value in ("alice", "bob smith", "jos\u00e9", "a"):
        assert ecma.search(value), value
    for value in ("a/b", " alice", "alice\n", "Alice", "al\x07ice"):
        assert not ecma.search(value), value


def test_error_codes_are_the_contract_s():
    assert ERROR_CODES[400] == "invalid_input" and ERROR_CODES[404] == "not_found"
    assert all(re.fullmatch(r"[a-z_]+", code) for code in ERROR_CODES.values())
