"""The seeded homes of the TUI tests serve the application layer's tests too."""

from tests.tui.conftest import _small_template, bulk_home, empty_spec_dir, seeded  # noqa: F401 (fixtures)
