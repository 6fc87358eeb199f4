"""vCard building, reading and merging, checked against exact text."""

from __future__ import annotations

import pytest

from mailroom.carddav import vcard
from mailroom.carddav.groups import Group
from mailroom.carddav.vcard import Contact
from mailroom.errors import VCardError

TRIAGED = "Triaged to Feed on 2025-01-31"
RETRIAGED = "Re-triaged to Imbox on 2025-02-03"


def crlf(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


# -- clean_display_name ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        (None, ""),
        ("", ""),
        ("  Bob   Smith ", "Bob Smith"),
        ("Bob\r\nX-EVIL:1", "Bob X-EVIL:1"),
        ("Bo\x00b\x07\x1b[31m", "Bob[31m"),
        ("a\tb\u2028c\x85d", "a b c d"),
        ("\u202eevil\u202c", "evil"),
        ("Zoë 李 \U0001f600", "Zoë 李 \U0001f600"),
    ],
)
def test_clean_display_name_removes_controls_and_collapses_space(
    raw: str | None, clean: str
) -> None:
    assert vcard.clean_display_name(raw) == clean


# -- new cards -------------------------------------------------------------------------


def test_new_company_card_has_fn_org_empty_n_email_uid_and_history() -> None:
    text = vcard.new_contact_card(
        uid="u-1",
        email="billing@acme.example",
        display_name="Acme Billing",
        contact_type="company",
        history_line=TRIAGED,
    )
    assert text == crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//mailroom//mailroom//EN",
        "UID:u-1",
        "EMAIL;TYPE=INTERNET:billing@acme.example",
        "FN:Acme Billing",
        "N:;;;;",
        "NOTE:--- mailroom ---\\nTriaged to Feed on 2025-01-31\\n--- end mailroom ---",
        "ORG:Acme Billing",
        "END:VCARD",
    )


def test_new_company_card_without_a_name_uses_the_local_part() -> None:
    text = vcard.new_contact_card(
        uid="u-1",
        email="news@shop.example",
        display_name="  \r\n",
        contact_type="company",
        history_line=TRIAGED,
    )
    contact = vcard.parse_contact(text)
    assert (contact.fn, contact.org) == ("news", "news")


def test_new_person_card_splits_the_name_with_nameparser() -> None:
    text = vcard.new_contact_card(
        uid="u-2",
        email="jane@x.example",
        display_name="Dr. Jane Q. van der Berg Jr.",
        contact_type="person",
        history_line=TRIAGED,
    )
    assert "N:van der Berg;Jane;Q.;Dr.;Jr.\r\n" in text
    assert "FN:Dr. Jane Q. van der Berg Jr.\r\n" in text
    assert "ORG" not in text
    contact = vcard.parse_contact(text)
    assert (contact.n_family, contact.n_given, contact.org) == ("van der Berg", "Jane", "")


def test_new_person_card_reads_last_comma_first() -> None:
    text = vcard.new_contact_card(
        uid="u-2",
        email="jane@x.example",
        display_name="Doe, Jane",
        contact_type="person",
        history_line=TRIAGED,
    )
    assert "N:Doe;Jane;;;\r\n" in text


HOSTILE = 'Evil, Inc.; "Ltd" \\ back\nEND:VCARD\r\nBEGIN:VCARD\r\nFN:x 李'


@pytest.mark.parametrize("contact_type", ["company", "person"])
def test_a_hostile_name_round_trips_and_cannot_add_a_property(
    contact_type: vcard.ContactType,
) -> None:
    text = vcard.new_contact_card(
        uid="u-3",
        email="evil@x.example",
        display_name=HOSTILE,
        contact_type=contact_type,
        history_line=TRIAGED,
    )
    expected_name = 'Evil, Inc.; "Ltd" \\ back END:VCARD BEGIN:VCARD FN:x 李'
    contact = vcard.parse_contact(text)
    assert contact.fn == expected_name
    assert contact.props <= {"VERSION", "PRODID", "UID", "FN", "N", "ORG", "EMAIL", "NOTE"}
    lines = text.replace("\r\n ", "").split("\r\n")
    assert lines.count("BEGIN:VCARD") == 1
    assert lines.count("END:VCARD") == 1
    assert [line for line in lines if line.startswith("FN:")] == [
        'FN:Evil\\, Inc.\\; "Ltd" \\\\ back END:VCARD BEGIN:VCARD FN:x 李'
    ]
    if contact_type == "company":
        assert contact.org == expected_name
    assert not vcard.was_edited_by_user(text)


def test_new_group_card_is_apple_style() -> None:
    assert vcard.new_group_card(uid="g-1", name="Paper Trail") == crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//mailroom//mailroom//EN",
        "UID:g-1",
        "FN:Paper Trail",
        "N:Paper Trail;;;;",
        "X-ADDRESSBOOKSERVER-KIND:group",
        "END:VCARD",
    )


# -- reading ---------------------------------------------------------------------------

RICH = crlf(
    "BEGIN:VCARD",
    "VERSION:3.0",
    "PRODID:-//Apple Inc.//iOS 17.0//EN",
    "N:Doe;Jane;;;",
    "FN:Jane Doe",
    "ORG:Acme\\, Inc.;Sales",
    "item1.EMAIL;type=INTERNET;type=pref:jane@acme.example",
    "item1.X-ABLabel:_$!<Work>!$_",
    "TEL;TYPE=CELL:+1 555 0100",
    "ADR;TYPE=HOME:;;1 Main St;Springfield;IL;62701;USA",
    "CATEGORIES:friends,work",
    "X-CUSTOM;X-PARAM=a:some value\\; kept",
    "NOTE:Met at the conference.\\nLikes tea\\, not coffee. This line is long eno",
    " ugh to be folded by the user's client.",
    "UID:abc-123",
    "REV:2024-01-01T00:00:00Z",
    "END:VCARD",
)


def test_parse_contact_reads_the_fields_triage_needs() -> None:
    assert vcard.parse_contact(RICH) == Contact(
        uid="abc-123",
        fn="Jane Doe",
        emails=("jane@acme.example",),
        org="Acme, Inc.",
        n_family="Doe",
        n_given="Jane",
        note=(
            "Met at the conference.\nLikes tea, not coffee. This line is long enough "
            "to be folded by the user's client."
        ),
        has_rev=True,
        props=frozenset(
            {"VERSION", "PRODID", "N", "FN", "ORG", "EMAIL", "X-ABLABEL", "TEL", "ADR"}
            | {"CATEGORIES", "X-CUSTOM", "NOTE", "UID", "REV"}
        ),
    )


def test_parse_contact_of_a_broken_card_raises_vcard_error() -> None:
    with pytest.raises(VCardError, match="cannot read a vCard"):
        vcard.parse_contact("BEGIN:VCARD\r\nthis is not a vcard line\r\nEND:VCARD\r\n")


def test_parse_group_reads_name_and_member_uids() -> None:
    text = crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:g-1",
        "FN:Screened In",
        "N:Screened In;;;;",
        "X-ADDRESSBOOKSERVER-KIND:group",
        "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:11111111-aaaa",
        "X-ADDRESSBOOKSERVER-MEMBER:URN:UUID:22222222-bbbb",
        "END:VCARD",
    )
    assert vcard.parse_group(text) == Group(
        uid="g-1", name="Screened In", member_uids=frozenset({"11111111-aaaa", "22222222-bbbb"})
    )


def test_parse_group_of_a_contact_is_none() -> None:
    assert vcard.parse_group(RICH) is None


# -- merge -----------------------------------------------------------------------------


def test_merge_keeps_every_user_line_and_adds_email_and_history() -> None:
    merged = vcard.merge_contact_card(
        RICH,
        email="Jane.Doe@home.example",
        display_name="Someone Else",
        contact_type="company",
        history_line=TRIAGED,
    )
    assert merged == crlf(
        *RICH.split("\r\n")[:12],
        "NOTE:Met at the conference.\\nLikes tea\\, not coffee. This line is long enou",
        " gh to be folded by the user's client.\\n\\n--- mailroom ---\\nTriaged to Feed",
        "  on 2025-01-31\\n--- end mailroom ---",
        "UID:abc-123",
        "REV:2024-01-01T00:00:00Z",
        "EMAIL;TYPE=INTERNET:Jane.Doe@home.example",
        "END:VCARD",
    )


def test_merge_does_not_add_an_email_that_differs_only_in_case() -> None:
    merged = vcard.merge_contact_card(
        RICH,
        email="JANE@ACME.EXAMPLE",
        display_name="Jane",
        contact_type="person",
        history_line=TRIAGED,
    )
    assert vcard.parse_contact(merged).emails == ("jane@acme.example",)


def test_merge_appends_to_the_existing_mailroom_section() -> None:
    first = vcard.new_contact_card(
        uid="u-1",
        email="a@x.example",
        display_name="A",
        contact_type="company",
        history_line=TRIAGED,
    )
    merged = vcard.merge_contact_card(
        first,
        email="a@x.example",
        display_name="A",
        contact_type="company",
        history_line=RETRIAGED,
    )
    assert vcard.note_history(vcard.parse_contact(merged).note) == [TRIAGED, RETRIAGED]
    assert merged.replace("\r\n ", "").count("NOTE") == 1
    assert vcard.strip_mailroom_section(merged) == crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//mailroom//mailroom//EN",
        "UID:u-1",
        "EMAIL;TYPE=INTERNET:a@x.example",
        "FN:A",
        "N:;;;;",
        "ORG:A",
        "END:VCARD",
    )


def test_merge_fills_empty_fields_only() -> None:
    bare = crlf("BEGIN:VCARD", "VERSION:3.0", "UID:x", "FN:", "N:;;;;", "END:VCARD")
    merged = vcard.merge_contact_card(
        bare,
        email="jane@x.example",
        display_name="Jane Doe",
        contact_type="person",
        history_line=TRIAGED,
    )
    assert merged == crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:x",
        "FN:Jane Doe",
        "N:Doe;Jane;;;",
        "EMAIL;TYPE=INTERNET:jane@x.example",
        "NOTE:--- mailroom ---\\nTriaged to Feed on 2025-01-31\\n--- end mailroom ---",
        "END:VCARD",
    )


def test_merge_gives_an_unshaped_card_an_org_for_a_company() -> None:
    bare = "BEGIN:VCARD\nVERSION:3.0\nUID:x\nFN:Shop\nEMAIL:news@shop.example\nEND:VCARD\n"
    merged = vcard.merge_contact_card(
        bare,
        email="news@shop.example",
        display_name="Shop News",
        contact_type="company",
        history_line=TRIAGED,
    )
    contact = vcard.parse_contact(merged)
    assert (contact.fn, contact.org, contact.emails) == (
        "Shop",
        "Shop News",
        ("news@shop.example",),
    )


def test_merge_does_not_give_a_person_an_org() -> None:
    person = crlf("BEGIN:VCARD", "VERSION:3.0", "UID:x", "FN:Jane", "N:Doe;Jane;;;", "END:VCARD")
    merged = vcard.merge_contact_card(
        person,
        email="jane@x.example",
        display_name="Acme",
        contact_type="company",
        history_line=TRIAGED,
    )
    assert "ORG" not in merged
    assert vcard.parse_contact(merged).fn == "Jane"


def test_merge_of_a_hostile_name_into_an_empty_card_adds_no_property() -> None:
    bare = crlf("BEGIN:VCARD", "VERSION:3.0", "UID:x", "END:VCARD")
    merged = vcard.merge_contact_card(
        bare,
        email="e@x.example",
        display_name=HOSTILE,
        contact_type="company",
        history_line=TRIAGED + "\nX-EVIL:1",
    )
    contact = vcard.parse_contact(merged)
    assert contact.props == {"VERSION", "UID", "FN", "ORG", "EMAIL", "NOTE"}
    assert vcard.note_history(contact.note) == [TRIAGED + " X-EVIL:1"]


# -- the NOTE section ------------------------------------------------------------------


def test_note_history_reads_only_the_section() -> None:
    note = f"mine\n--- mailroom ---\n{TRIAGED}\n\n{RETRIAGED}\n--- end mailroom ---\nafter"
    assert vcard.note_history(note) == [TRIAGED, RETRIAGED]
    assert vcard.note_history("Triaged to Feed on 2025-01-31") == []
    assert vcard.note_history(None) == []


def test_strip_keeps_user_text_before_and_after_the_section() -> None:
    card = crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:x",
        "FN:Jane",
        "NOTE:mine\\n\\n--- mailroom ---\\nTriaged to Feed on 2025-01-31\\n--- end ",
        " mailroom ---\\nadded later",
        "TEL:1",
        "END:VCARD",
    )
    assert vcard.strip_mailroom_section(card) == crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "UID:x",
        "FN:Jane",
        "NOTE:mine\\nadded later",
        "TEL:1",
        "END:VCARD",
    )


def test_strip_of_a_merged_rich_card_gives_back_the_original() -> None:
    merged = vcard.merge_contact_card(
        RICH,
        email="jane@acme.example",
        display_name="Jane",
        contact_type="person",
        history_line=TRIAGED,
    )
    stripped = vcard.strip_mailroom_section(merged)
    assert vcard.parse_contact(stripped) == vcard.parse_contact(RICH)
    assert stripped.replace("\r\n ", "") == RICH.replace("\r\n ", "")


def test_strip_without_a_section_returns_the_text_unchanged() -> None:
    assert vcard.strip_mailroom_section(RICH) == RICH
    lf = RICH.replace("\r\n", "\n")
    assert vcard.strip_mailroom_section(lf) == lf


# -- groups ----------------------------------------------------------------------------

GROUP = crlf(
    "BEGIN:VCARD",
    "VERSION:3.0",
    "PRODID:-//Apple Inc.//AddressBook 6.1//EN",
    "UID:g-1",
    "FN:Feed",
    "N:Feed;;;;",
    "X-ADDRESSBOOKSERVER-KIND:group",
    "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:old",
    "X-FASTMAIL-SOMETHING:kept",
    "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:stay",
    "END:VCARD",
)


def test_group_with_members_adds_and_removes_and_keeps_other_lines() -> None:
    updated = vcard.group_with_members(GROUP, add=["new", "stay"], remove=["old"])
    assert updated == crlf(
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Apple Inc.//AddressBook 6.1//EN",
        "UID:g-1",
        "FN:Feed",
        "N:Feed;;;;",
        "X-ADDRESSBOOKSERVER-KIND:group",
        "X-FASTMAIL-SOMETHING:kept",
        "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:stay",
        "X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:new",
        "END:VCARD",
    )
    again = vcard.group_with_members(updated, add=["new", "stay"], remove=["old"])
    assert again == updated


def test_group_with_members_without_a_change_returns_the_text_unchanged() -> None:
    lf = GROUP.replace("\r\n", "\n")
    assert vcard.group_with_members(lf, add=["stay"], remove=["absent"]) == lf


def test_group_with_members_adds_a_uid_that_is_also_removed() -> None:
    updated = vcard.group_with_members(GROUP, add=["old"], remove=["old"])
    assert updated == GROUP


# -- was_edited_by_user ----------------------------------------------------------------


def test_a_card_mailroom_wrote_is_not_edited() -> None:
    text = vcard.new_contact_card(
        uid="u",
        email="a@x.example",
        display_name="A",
        contact_type="person",
        history_line=TRIAGED,
    )
    assert not vcard.was_edited_by_user(text)


@pytest.mark.parametrize(
    "extra",
    [
        "REV:2025-02-01T10:00:00Z",
        "TEL;TYPE=CELL:+1 555 0100",
        "X-ABShowAs:COMPANY",
        "NOTE:my own words",
    ],
)
def test_a_card_with_user_changes_is_edited(extra: str) -> None:
    text = vcard.new_contact_card(
        uid="u",
        email="a@x.example",
        display_name="A",
        contact_type="company",
        history_line=TRIAGED,
    )
    if extra.startswith("NOTE:"):
        text = text.replace("NOTE:", "NOTE:my own words\\n\\n", 1)
    else:
        text = text.replace("END:VCARD", f"{extra}\r\nEND:VCARD")
    assert vcard.was_edited_by_user(text)
