"""Our processes print only our words: deprecation notices that libraries raise about
*other* libraries (e.g. cryptography deprecating DSA while asyncssh still names it at import)
are for their maintainers, not for a Cambrian user. Every entry point calls
:func:`silence_library_deprecations` first.

Narrow on purpose: only warnings whose text says "deprecat…" and that are attributed to a
module of one of the libraries below; our own code's warnings, and every other warning,
still show.
"""

from __future__ import annotations

import warnings

# Libraries whose import-time deprecation chatter reached users' terminals or child output.
LIBRARIES = ("asyncssh", "cryptography", "docker", "paramiko", "textual_serve", "aiohttp",
             "skopt", "sklearn", "plotext", "libcst")


def silence_library_deprecations() -> None:
    for lib in LIBRARIES:
        warnings.filterwarnings("ignore", message=r".*deprecat", module=rf"{lib}(\.|$)")
