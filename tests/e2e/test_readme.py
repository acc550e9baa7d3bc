"""The README's tour: every `$ curl` line of its console blocks is run against
`crest serve examples/tasks/app.yaml` (fresh database, in order; on
PostgreSQL with its startup SQL in that store's form) and must print what
the README shows, up to timestamps, dates and request ids (readme.py)."""
import readme
from rest_apps import example_app


def test_the_readme_tour_prints_what_it_shows(crest):
    cmds = readme.curl_commands(readme.section("## A 5-minute tour"))
    assert len(cmds) >= 15, "the tour lost its curl lines"
    s = crest(example_app())
    readme.check_commands(cmds, f"127.0.0.1:{s.port}")
