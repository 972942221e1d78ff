"""The layers corpus holds artifacts (with their own tests), not host tests: never collected."""

collect_ignore_glob = ["*"]
