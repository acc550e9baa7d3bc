"""The README's tour: every `$ curl` line of its console blocks is run against
`crest serve examples/tasks/app.yaml` (fresh database, in order; on
PostgreSQL with its startup SQL in that store's form) and must print what
the README shows, up to timestamps, dates and request ids (readme.py); and
the relations sections' tours are the ones test_examples_relations.py walks
against examples/people and examples/tags."""
import pytest

import readme
import test_examples_relations as examples
from rest_apps import example_app


def test_the_readme_tour_prints_what_it_shows(crest):
    cmds = readme.curl_commands(readme.section("## A 5-minute tour"))
    assert len(cmds) >= 15, "the tour lost its curl lines"
    s = crest(example_app())
    readme.check_commands(cmds, f"127.0.0.1:{s.port}")


@pytest.mark.parametrize("title,tour", [
    ("## Relations: Flask-Restless's people and computers", examples.PEOPLE_TOUR),
    ("## Emmett-REST's tasks and tags", examples.TAGS_TOUR),
], ids=["people", "tags"])
def test_the_relations_tours_are_the_ones_test_examples_relations_walks(title, tour):
    shown = [(c, readme.normalize(e)) for c, e in readme.curl_commands(readme.section(title))]
    walked = [(c, readme.normalize(e)) for c, e in examples.tour_commands(tour)]
    assert len(shown) >= 10
    assert shown == walked


def test_the_readme_production_features_walk_prints_what_it_shows(crest):
    """ETags, cursors, idempotency, the change feed and gzip, as the README
    shows them, on a fresh `crest serve examples/tasks/app.yaml`."""
    cmds = readme.curl_commands(readme.section("## ETags, cursors, a change feed, idempotent creates, gzip"))
    assert len(cmds) >= 12, "the walk lost its curl lines"
    s = crest(example_app())
    readme.check_commands(cmds, f"127.0.0.1:{s.port}")
