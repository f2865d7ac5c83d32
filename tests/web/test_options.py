"""The dashboard's select options: the chosen value selected, everything escaped."""

from __future__ import annotations

from dtim.web.options import options


def test_the_chosen_value_is_selected_and_the_others_are_not() -> None:
    assert options(("ipv4", "domain"), "domain") == (
        '<option value="ipv4">ipv4</option><option value="domain" selected>domain</option>'
    )
    assert options((("", "any age"), ("7", "last 7 days")), "") == (
        '<option value="" selected>any age</option><option value="7">last 7 days</option>'
    )


def test_unknown_or_missing_choices_select_nothing() -> None:
    for chosen in (None, "sha1", 7, ["ipv4"]):
        assert "selected" not in options(("ipv4", "domain"), chosen)


def test_values_and_labels_are_escaped() -> None:
    hostile = ('"><script>x</script>', "<b>bold</b> & co")
    markup = options((hostile,), hostile[0])
    assert "<script>" not in markup
    assert "<b>" not in markup
    assert markup == (
        '<option value="&quot;&gt;&lt;script&gt;x&lt;/script&gt;" selected>'
        "&lt;b&gt;bold&lt;/b&gt; &amp; co</option>"
    )
