from aiohttp import web

from app.server import make_app

if __name__ == "__main__":
    # Binds 8402, the manifest's health URL says 8401.
    web.run_app(make_app(), host="0.0.0.0", port=8402, print=None)
