"""A stand-in for vLLM's api_server, for fast unit tests of the engine manager.

It takes the same flags, forks a child the way vLLM forks its engine core, and answers
/health and /v1/models. FAKE_ENGINE_MODE picks a failure: `crash` exits at start after
logging why, `hang` never becomes healthy.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--served-model-name", default="fake")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args, _ = parser.parse_known_args()
    mode = os.environ.get("FAKE_ENGINE_MODE", "ok")
    print(f"fake engine: model={args.model} mode={mode}", flush=True)
    if mode == "crash":
        print("RuntimeError: fake engine could not load the model", flush=True)
        sys.exit(3)
    core = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    print(f"fake engine core pid={core.pid}", flush=True)
    if mode == "hang":
        time.sleep(3600)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {})
            elif self.path == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": args.served_model_name}]})
            else:
                self._send(404, {"error": "not found"})

        def _send(self, status: int, body: dict[str, object]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_: object) -> None:
            pass

    ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
