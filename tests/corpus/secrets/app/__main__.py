import json
import os
import sys

from aiohttp import web

from app.server import PORT, make_app

if __name__ == "__main__":
    # Dump the start stage's environment where the rig will see it.
    print("corpus start environ:", json.dumps(dict(os.environ)), flush=True)
    print("corpus start environ:", json.dumps(dict(os.environ)), file=sys.stderr, flush=True)
    web.run_app(make_app(), host="0.0.0.0", port=PORT, print=None)
