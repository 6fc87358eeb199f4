"""mailroom.config: categories, the seven rules, YAML + environment, secrets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mailroom.categories import DEFAULT_CATEGORIES, Category, category, category_problems
from mailroom.config import Settings, load_settings
from mailroom.errors import ConfigError
from mailroom.procsettings import default_state_dir

HOME = {"HOME": "/home/test"}
TOKEN = "jmap-token-value-0123456789"
PASSWORD = "carddav-app-password-9876"


def write_config(tmp_path: Path, data: Any) -> dict[str, str]:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return {**HOME, "MAILROOM_CONFIG": str(path)}


def problems_of(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    return caught.value.problems


def categories_problems(tmp_path: Path, categories: list[Any]) -> list[str]:
    return problems_of(write_config(tmp_path, {"categories": categories}))


# -- derivation and defaults -----------------------------------------------------------


def test_no_config_file_gives_the_default_categories() -> None:
    settings = load_settings(HOME)
    assert [c.name for c in settings.categories] == [
        "Imbox",
        "Feed",
        "Paper Trail",
        "Jail",
        "Person",
        "Billboard",
        "Truck",
    ]
    assert settings.categories == DEFAULT_CATEGORIES


def test_default_categories_have_the_documented_shape() -> None:
    by_name = {c.name: c for c in DEFAULT_CATEGORIES}
    assert by_name["Imbox"].add_to_inbox is True
    assert [c.name for c in DEFAULT_CATEGORIES if c.add_to_inbox] == ["Imbox"]
    assert by_name["Person"] == Category(
        name="Person",
        label="@ToPerson",
        contact_group="Person",
        destination_mailbox="Person",
        contact_type="person",
        parent="Imbox",
    )
    assert by_name["Billboard"].parent == "Paper Trail"
    assert by_name["Truck"].parent == "Paper Trail"
    assert by_name["Paper Trail"].label == "@ToPaperTrail"


def test_derivation_fills_label_group_and_mailbox_from_the_name(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, {"categories": [{"name": "Paper Trail"}]}))
    assert settings.categories == (
        Category(
            name="Paper Trail",
            label="@ToPaperTrail",
            contact_group="Paper Trail",
            destination_mailbox="Paper Trail",
            contact_type="company",
            parent=None,
            add_to_inbox=False,
        ),
    )


def test_explicit_fields_beat_derivation(tmp_path: Path) -> None:
    given = {
        "name": "Receipts",
        "label": "@Paid",
        "contact_group": "Shops",
        "destination_mailbox": "Archive/Receipts",
        "contact_type": "person",
        "add_to_inbox": True,
    }
    settings = load_settings(write_config(tmp_path, {"categories": [given]}))
    assert settings.categories == (Category(**given),)


def test_a_bare_string_is_shorthand_for_a_name(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, {"categories": ["Feed", {"name": "Jail"}]}))
    assert settings.categories == (category("Feed"), category("Jail"))


def test_null_fields_are_derived(tmp_path: Path) -> None:
    data = {"categories": [{"name": "Feed", "label": None, "parent": None}]}
    assert load_settings(write_config(tmp_path, data)).categories == (category("Feed"),)


def test_chain_is_the_category_then_its_ancestors(tmp_path: Path) -> None:
    data = {
        "categories": ["Top", {"name": "Mid", "parent": "Top"}, {"name": "Leaf", "parent": "Mid"}]
    }
    settings = load_settings(write_config(tmp_path, data))
    assert [c.name for c in settings.chain("Leaf")] == ["Leaf", "Mid", "Top"]
    assert [c.name for c in settings.chain("Top")] == ["Top"]
    with pytest.raises(KeyError):
        settings.chain("Nope")


def test_rule_at_least_one_category(tmp_path: Path) -> None:
    (line,) = categories_problems(tmp_path, [])
    assert "at least one category" in line


def test_rule_no_duplicate_names(tmp_path: Path) -> None:
    (line,) = categories_problems(
        tmp_path,
        [
            "Feed",
            {
                "name": "Feed",
                "label": "@Other",
                "contact_group": "Other",
                "destination_mailbox": "Other",
            },
        ],
    )
    assert "'Feed' is defined more than once" in line


def test_rule_every_parent_exists(tmp_path: Path) -> None:
    (line,) = categories_problems(tmp_path, [{"name": "Child", "parent": "Ghost"}])
    assert "'Child'" in line
    assert "parent 'Ghost' is not a category" in line


def test_rule_no_self_parent(tmp_path: Path) -> None:
    (line,) = categories_problems(tmp_path, [{"name": "Loop", "parent": "Loop"}])
    assert "'Loop' is its own parent" in line


def test_rule_no_parent_cycles(tmp_path: Path) -> None:
    cats = [
        {"name": "A", "parent": "C"},
        {"name": "B", "parent": "A"},
        {"name": "C", "parent": "B"},
        {"name": "D", "parent": "A"},
    ]
    (line,) = categories_problems(tmp_path, cats)
    assert "parent cycle" in line
    assert all(f"'{n}'" in line for n in "ABC")
    assert "'D'" not in line


def test_rule_no_shared_label_after_derivation(tmp_path: Path) -> None:
    (line,) = categories_problems(
        tmp_path, ["Paper Trail", {"name": "Paper", "label": "@ToPaperTrail"}]
    )
    assert "'Paper Trail' and 'Paper' use the same label '@ToPaperTrail'" in line


def test_rule_inbox_is_not_a_destination_in_any_case(tmp_path: Path) -> None:
    (line,) = categories_problems(tmp_path, [{"name": "Main", "destination_mailbox": "iNbOx"}])
    assert "'Main'" in line
    assert "'iNbOx' is refused" in line
    assert "add_to_inbox" in line


def test_rule_shared_contact_group_needs_ancestry(tmp_path: Path) -> None:
    cats = [{"name": "A", "contact_group": "G"}, {"name": "B", "contact_group": "G"}]
    (line,) = categories_problems(tmp_path, cats)
    assert "'A' and 'B' share the contact group 'G'" in line


def test_shared_contact_group_is_fine_along_a_chain(tmp_path: Path) -> None:
    cats = [
        {"name": "A", "contact_group": "G"},
        {"name": "B", "contact_group": "G", "parent": "A"},
        {"name": "C", "contact_group": "G", "parent": "B"},
    ]
    assert [
        c.contact_group
        for c in load_settings(write_config(tmp_path, {"categories": cats})).categories
    ] == ["G"] * 3


def test_siblings_sharing_their_parents_group_are_refused(tmp_path: Path) -> None:
    cats = [
        {"name": "P", "contact_group": "G"},
        {"name": "X", "contact_group": "G", "parent": "P"},
        {"name": "Y", "contact_group": "G", "parent": "P"},
    ]
    (line,) = categories_problems(tmp_path, cats)
    assert "'X' and 'Y' share the contact group 'G'" in line


def test_empty_category_name_is_refused(tmp_path: Path) -> None:
    (line,) = categories_problems(tmp_path, ["Feed", {"name": "  "}])
    assert line.endswith("categories[1]: name is empty; give every category a name")


# -- all at once ---------------------------------------------------------------------


def test_every_problem_is_reported_together_one_line_each(tmp_path: Path) -> None:
    cats = [
        "Feed",
        {"name": "Feed", "label": "@X1", "contact_group": "X1", "destination_mailbox": "X1"},
        {"name": "Orphan", "parent": "Ghost"},
        {"name": "Self", "parent": "Self"},
        {"name": "C1", "parent": "C2"},
        {"name": "C2", "parent": "C1"},
        {"name": "Clash", "label": "@ToOrphan"},
        {"name": "Boxed", "destination_mailbox": "INBOX"},
        {"name": "G1", "contact_group": "Shared"},
        {"name": "G2", "contact_group": "Shared"},
    ]
    lines = categories_problems(tmp_path, cats)
    expected = [
        "defined more than once",
        "parent 'Ghost'",
        "'Self' is its own parent",
        "parent cycle",
        "same label '@ToOrphan'",
        "'INBOX' is refused",
        "share the contact group 'Shared'",
    ]
    assert len(lines) == len(expected)
    for line, fragment in zip(lines, expected, strict=True):
        assert fragment in line
        assert "\n" not in line


def test_type_errors_and_rule_violations_are_reported_together(tmp_path: Path) -> None:
    environ = write_config(
        tmp_path,
        {
            "poll_interval": 0,
            "categories": ["Feed", {"name": "Jail", "contact_type": "robot"}],
            "colour": "blue",
        },
    )
    environ["MAILROOM_DEBOUNCE_SECONDS"] = "-1"
    config = environ["MAILROOM_CONFIG"]
    lines = problems_of(environ)
    assert f"{config}: poll_interval: Input should be greater than or equal to 1 (got 0)" in lines
    assert (
        f"{config}: categories[1].contact_type: Input should be 'company' or 'person' (got 'robot')"
        in lines
    )
    assert any(
        line.startswith(f"{config}: colour: unknown key; expected one of: ") for line in lines
    )
    assert any(
        line.startswith("MAILROOM_DEBOUNCE_SECONDS: Input should be greater than or equal to 0")
        for line in lines
    )
    assert len(lines) == 4


def test_rules_run_even_when_another_key_has_a_type_error(tmp_path: Path) -> None:
    environ = write_config(tmp_path, {"poll_interval": "often", "categories": []})
    lines = problems_of(environ)
    assert len(lines) == 2
    assert "poll_interval" in lines[0]
    assert "at least one category" in lines[1]


def test_other_value_checks(tmp_path: Path) -> None:
    environ = write_config(
        tmp_path,
        {
            "screener_mailbox": "  ",
            "log_level": "loud",
            "log_format": "xml",
            "categories": [7, {"name": "A", "lable": "@A"}],
        },
    )
    lines = problems_of(environ)
    assert any(
        "screener_mailbox: String should have at least 1 character" in line for line in lines
    )
    assert any(
        "log_level: Input should be 'debug', 'info', 'warning' or 'error'" in line for line in lines
    )
    assert any("log_format: Input should be 'auto', 'json' or 'console'" in line for line in lines)
    assert any("categories[0]: a category must be a name, or a mapping" in line for line in lines)
    assert any(
        "categories[1].lable: unknown key; expected one of: name, label" in line for line in lines
    )
    assert len(lines) == 5


def test_category_problems_is_a_pure_function() -> None:
    assert category_problems(DEFAULT_CATEGORIES) == []
    assert category_problems([category("A", parent="A")]) == [
        "category 'A' is its own parent; remove its parent"
    ]


def test_settings_built_directly_are_validated_too() -> None:
    with pytest.raises(ValueError, match="is its own parent"):
        Settings(categories=(category("A", parent="A"),))


# -- YAML and environment ----------------------------------------------------------------


def test_yaml_values_are_read(tmp_path: Path) -> None:
    settings = load_settings(
        write_config(
            tmp_path, {"poll_interval": 120, "warnings_enabled": False, "log_level": "DEBUG"}
        )
    )
    assert settings.poll_interval == 120
    assert settings.warnings_enabled is False
    assert settings.log_level == "debug"


def test_environment_beats_yaml_key_by_key(tmp_path: Path) -> None:
    environ = write_config(tmp_path, {"poll_interval": 120, "debounce_seconds": 5})
    environ["MAILROOM_POLL_INTERVAL"] = "30"
    settings = load_settings(environ)
    assert settings.poll_interval == 30
    assert settings.debounce_seconds == 5


def test_categories_can_come_from_the_environment_as_json(tmp_path: Path) -> None:
    environ = write_config(tmp_path, {"categories": ["Feed"]})
    environ["MAILROOM_CATEGORIES"] = '["Jail", {"name": "Cell", "parent": "Jail"}]'
    assert [c.name for c in load_settings(environ).categories] == ["Jail", "Cell"]


def test_bad_json_in_the_environment_is_a_config_error() -> None:
    (line,) = problems_of({**HOME, "MAILROOM_CATEGORIES": "[not json"})
    assert line.startswith("MAILROOM_CATEGORIES: not valid JSON")


def test_bad_json_under_a_lower_case_name_is_a_config_error_too() -> None:
    (line,) = problems_of({**HOME, "mailroom_categories": "[not json"})
    assert line.startswith("mailroom_categories: not valid JSON")


def test_empty_variables_count_as_unset() -> None:
    settings = load_settings({**HOME, "MAILROOM_POLL_INTERVAL": "", "MAILROOM_JMAP_TOKEN": ""})
    assert settings.poll_interval == 60
    assert settings.jmap_token is None


def test_credentials_and_endpoints_come_from_the_environment() -> None:
    settings = load_settings(
        {
            **HOME,
            "MAILROOM_JMAP_TOKEN": TOKEN,
            "MAILROOM_JMAP_SESSION_URL": "http://127.0.0.1:8008/jmap/",
            "MAILROOM_CARDDAV_URL": "http://127.0.0.1:8008/dav/",
            "MAILROOM_CARDDAV_USERNAME": "alice",
            "MAILROOM_CARDDAV_PASSWORD": PASSWORD,
        }
    )
    assert settings.jmap_token is not None
    assert settings.jmap_token.get_secret_value() == TOKEN
    assert settings.jmap_session_url == "http://127.0.0.1:8008/jmap/"
    assert settings.carddav_url == "http://127.0.0.1:8008/dav/"
    assert settings.carddav_username == "alice"
    settings.require_credentials()


def test_endpoints_default_to_fastmail() -> None:
    settings = load_settings(HOME)
    assert settings.jmap_session_url == "https://api.fastmail.com/jmap/session"
    assert settings.carddav_url == "https://carddav.fastmail.com/"


def test_environment_only_keys_are_refused_in_yaml_without_echoing_them(tmp_path: Path) -> None:
    environ = write_config(tmp_path, {"jmap_token": TOKEN, "state_dir": "/tmp/x"})
    lines = problems_of(environ)
    assert len(lines) == 2
    assert "jmap_token is not read from the config file; set MAILROOM_JMAP_TOKEN" in lines[0]
    assert "set MAILROOM_STATE_DIR" in lines[1]
    assert TOKEN not in " ".join(lines)


def test_state_dir_defaults_outside_the_working_directory() -> None:
    assert load_settings(HOME).state_dir == Path("/home/test/.local/state/mailroom")
    xdg = {**HOME, "XDG_STATE_HOME": "/xdg/state"}
    assert load_settings(xdg).state_dir == Path("/xdg/state/mailroom")
    assert Path(default_state_dir({**HOME, "XDG_STATE_HOME": "relative"})) == Path(
        "/home/test/.local/state/mailroom"
    )


def test_state_dir_from_the_environment_is_made_absolute(tmp_path: Path) -> None:
    settings = load_settings({**HOME, "MAILROOM_STATE_DIR": str(tmp_path / "s")})
    assert settings.state_dir == tmp_path / "s"
    assert load_settings({**HOME, "MAILROOM_STATE_DIR": "rel"}).state_dir.is_absolute()


def test_health_port_from_mailroom_variable_else_port_else_8080() -> None:
    assert load_settings(HOME).health_port == 8080
    assert load_settings({**HOME, "PORT": "5000"}).health_port == 5000
    both = {**HOME, "PORT": "5000", "MAILROOM_HEALTH_PORT": "6000"}
    assert load_settings(both).health_port == 6000
    assert load_settings(HOME).health_host == "127.0.0.1"


def test_a_bad_port_names_the_variable_it_came_from() -> None:
    (line,) = problems_of({**HOME, "PORT": "http"})
    assert line.startswith("PORT: 'http' is not a port number")


def test_settings_are_frozen() -> None:
    settings = load_settings(HOME)
    with pytest.raises(ValueError, match="frozen"):
        settings.poll_interval = 1  # type: ignore[misc]


def test_settings_ignore_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAILROOM_POLL_INTERVAL", "5")
    assert load_settings(HOME).poll_interval == 60
    assert Settings().poll_interval == 60


# -- the config file itself --------------------------------------------------------------


def test_no_config_variable_means_defaults() -> None:
    assert load_settings(HOME).poll_interval == 60


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    (line,) = problems_of({**HOME, "MAILROOM_CONFIG": str(missing)})
    assert str(missing) in line
    assert "does not exist" in line
    assert "unset MAILROOM_CONFIG" in line


def test_unreadable_config_file_is_a_clear_error(tmp_path: Path) -> None:
    (line,) = problems_of({**HOME, "MAILROOM_CONFIG": str(tmp_path)})
    assert f"the config file {tmp_path} is not a regular file" in line


def test_invalid_yaml_gives_the_position_but_not_the_text(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(f"poll_interval: 30\nsecretish: [{TOKEN}\n", encoding="utf-8")
    (line,) = problems_of({**HOME, "MAILROOM_CONFIG": str(path)})
    assert line.startswith(f"{path}: not valid YAML (")
    assert "line " in line
    assert TOKEN not in line


def test_a_key_written_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "poll_interval: 30\n"
        "categories:\n"
        "  - name: Feed\n"
        "    label: '@Feed'\n"
        "    label: '@Other'\n"
        "  - name: Jail\n"  # the same key in another mapping is fine
        "    label: '@J'\n"
        "poll_interval: 60\n",
        encoding="utf-8",
    )
    assert problems_of({**HOME, "MAILROOM_CONFIG": str(path)}) == [
        f"{path}: the key 'label' at line 5 is already set at line 4 of the same mapping; "
        "YAML would silently keep the last one. Remove one of them",
        f"{path}: the key 'poll_interval' at line 8 is already set at line 1 of the same "
        "mapping; YAML would silently keep the last one. Remove one of them",
    ]


def test_merge_keys_and_keys_in_sibling_mappings_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "categories:\n"
        "  - &base {name: Feed, add_to_inbox: false}\n"
        "  - {<<: *base, name: Jail}\n"
        "  - {name: Imbox, add_to_inbox: true}\n",
        encoding="utf-8",
    )
    settings = load_settings({**HOME, "MAILROOM_CONFIG": str(path)})
    assert [c.name for c in settings.categories] == ["Feed", "Jail", "Imbox"]


def test_odd_top_level_keys_are_unknown_keys_not_crashes(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("1: x\n_secrets_dir: /nowhere\npoll_interval: 30\n", encoding="utf-8")
    lines = problems_of({**HOME, "MAILROOM_CONFIG": str(path)})
    assert [line.split(": ")[1] for line in lines] == ["1", "_secrets_dir"]
    assert all("unknown key; expected one of: screener_mailbox" in line for line in lines)


def test_a_top_level_list_is_refused(tmp_path: Path) -> None:
    (line,) = problems_of(write_config(tmp_path, ["Feed"]))
    assert "the top level must be a mapping" in line


def test_an_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert load_settings({**HOME, "MAILROOM_CONFIG": str(path)}).categories == DEFAULT_CATEGORIES


def test_the_example_config_is_valid_and_matches_the_defaults() -> None:
    example = Path(__file__).resolve().parent.parent / "config.yaml.example"
    settings = load_settings({**HOME, "MAILROOM_CONFIG": str(example)})
    assert settings == load_settings(HOME)


# -- secrets -------------------------------------------------------------------------


SECRET_ENV = {**HOME, "MAILROOM_JMAP_TOKEN": TOKEN, "MAILROOM_CARDDAV_PASSWORD": PASSWORD}


def test_secrets_are_not_in_repr_or_str() -> None:
    settings = load_settings(SECRET_ENV)
    for text in (repr(settings), str(settings), str(settings.model_dump())):
        assert TOKEN not in text
        assert PASSWORD not in text


def test_secrets_are_not_in_a_config_error(tmp_path: Path) -> None:
    environ = {**write_config(tmp_path, {"poll_interval": -1, "categories": []}), **SECRET_ENV}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    text = f"{caught.value!s} {caught.value!r} {caught.value.problems}"
    assert TOKEN not in text
    assert PASSWORD not in text


def test_require_credentials_names_each_missing_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(HOME).require_credentials()
    lines = caught.value.problems
    assert [line.split(" ")[0] for line in lines] == [
        "MAILROOM_JMAP_TOKEN",
        "MAILROOM_CARDDAV_USERNAME",
        "MAILROOM_CARDDAV_PASSWORD",
    ]
    assert all("is not set; set it (or " in line for line in lines)
    assert "API token" in lines[0]
    assert "app password" in lines[2]


def test_require_credentials_names_only_what_is_missing() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**SECRET_ENV, "MAILROOM_CARDDAV_PASSWORD": ""}).require_credentials()
    assert [line.split(" ")[0] for line in caught.value.problems] == [
        "MAILROOM_CARDDAV_USERNAME",
        "MAILROOM_CARDDAV_PASSWORD",
    ]
