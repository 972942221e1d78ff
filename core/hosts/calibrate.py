"""The short rig run `hosts check` times on a host: a stdlib HTTP service with one test,
through every rig stage (the same hardening, build, test, start and probe as a real run)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from rig.hashing import artifact_hash_of, sha256_hex

APP = '''\
import http.server, json


class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    http.server.HTTPServer(("127.0.0.1", 8080), H).serve_forever()
'''
TEST = "import app\n\n\ndef test_handler_exists():\n    assert app.H\n"
SPEC = "# Calibration\n\nA service that answers /health.\n"


def write_calibration_artifact(root: Path) -> Path:
    files = {"app.py": APP.encode(), "tests/test_app.py": TEST.encode(),
             "spec/calibrate.md": SPEC.encode()}
    root.mkdir(parents=True, exist_ok=True)
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    manifest = {
        "cambrian-version": 1, "generation": 1, "parent-generation": 0,
        "spec-hash": sha256_hex(files["spec/calibrate.md"]), "artifact-hash": artifact_hash_of(files),
        "producer-model": "calibration", "token-usage": {"input": 0, "output": 0},
        "files": sorted(list(files) + ["manifest.json"]),
        "created-at": datetime.now(timezone.utc).isoformat(),
        "entry": {"build": "python -m compileall -q app.py", "test": "python -m pytest -q",
                  "start": "python app.py", "health": "http://localhost:8080/health"},
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return root
