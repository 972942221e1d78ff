"""The ``campaigns.kind`` values of an evolution run and its campaigns (no imports: the
TUI's start path reads them without loading the store)."""

RUN_KIND = "evolution"
SCREEN_KIND = "screen"
FULL_KIND = "evolution-campaign"
CHILD_KINDS = (SCREEN_KIND, FULL_KIND)
