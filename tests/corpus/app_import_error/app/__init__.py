"""The package imports a dependency that is not installed: `import app` fails."""

import corpus_missing_dependency  # noqa: F401
