"""Any text given to any parser (and then the detector) yields observations or ParseError."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dtim.errors import ParseError
from dtim.model import Sighting
from dtim.watchers.base import Observation, WatcherContext, WatcherSpec
from dtim.watchers.plugins import make_plugin_manager, registered_watchers
from tests.watchers.corpus import SAMPLES, load

NAMES = sorted(registered_watchers(make_plugin_manager(load_entrypoints=False)))
SEEDS = [s.line for path in sorted(SAMPLES.glob("*/*.log")) for s in load(path).samples]

text = st.one_of(
    st.text(max_size=400),
    st.sampled_from(SEEDS),
    st.builds(
        lambda seed, cut, junk: seed[:cut] + junk,
        st.sampled_from(SEEDS),
        st.integers(0, 300),
        st.text(max_size=40),
    ),
)


@pytest.mark.parametrize("name", NAMES)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=st.lists(text, min_size=1, max_size=8))
def test_any_text_yields_observations_or_parse_error(
    name: str, lines: list[str], specs: dict[str, WatcherSpec]
) -> None:
    watcher = specs[name].create(WatcherContext())
    parser = watcher.parser_for("fuzz.log")
    for line in lines:
        try:
            observation = parser.parse(line)
            if observation is None:
                continue
            assert isinstance(observation, Observation)
            found = watcher.detect(observation)
        except ParseError:
            continue
        assert all(isinstance(s, Sighting) for s in found)
